"""Generate a synthetic dataset in the nuScenes v1.0 schema (scored by the official devkit unchanged).

Example:
    python tools/make_synthetic_nuscenes.py --dataroot work/data/mini --version v1.0-mini \\
        --samples-per-scene 10
"""

from __future__ import annotations

import argparse
import os
import time

from fd3d.data.synthetic import SUPPORTED_VERSIONS, SyntheticConfig, generate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataroot", required=True, help="output folder (created if missing)")
    parser.add_argument("--version", default="v1.0-mini", choices=SUPPORTED_VERSIONS)
    parser.add_argument(
        "--scenes",
        type=int,
        default=None,
        help="v1.0-mini: total scenes, 2..10 (default 10); v1.0-trainval: train scenes (default 8)",
    )
    parser.add_argument(
        "--val-scenes", type=int, default=None, help="v1.0-trainval only: val scenes (default 2)"
    )
    parser.add_argument(
        "--samples-per-scene", type=int, default=10, help="keyframes per scene, 2 Hz (default 10)"
    )
    parser.add_argument("--image-size", type=int, nargs=2, default=(224, 400), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = SyntheticConfig(
        version=args.version,
        scenes=args.scenes,
        val_scenes=args.val_scenes,
        samples_per_scene=args.samples_per_scene,
        image_size=tuple(args.image_size),
        seed=args.seed,
        workers=args.workers,
    )
    start = time.perf_counter()
    summary = generate(args.dataroot, config)
    elapsed = time.perf_counter() - start
    counts = ", ".join(f"{v} {k}" for k, v in summary.items())
    print(f"wrote {args.version} to {args.dataroot}: {counts} in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
