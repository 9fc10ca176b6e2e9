#!/usr/bin/env python
"""Peak memory of one training pass: the map-style dataroot loader against the `datasets` shard stream.

    python tools/benchmark_streaming.py --out benchmarks/results/streaming_memory

For each size factor (default 1 and 10 times a base of 10 train scenes x 10 keyframes, 224x400 renders) it
generates a synthetic v1.0-trainval dataroot (kept in --work and reused), exports its Parquet shards, and
reads every training sample once, decoded at 112x200 as the CPU apprentice reads them, in a fresh
process per loader (`--measure`), reporting that process's peak RSS, how far above its post-import RSS
the pass took it (building the dataset included; Linux: VmHWM reset after the imports), and samples/s.
The stream holds one scene at a time, the map-style dataset the whole devkit tables: the stream's peak
must stay flat as the data grows. Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

IMAGE_SIZE = (112, 200)


def measure(kind: str, root: str) -> dict:
    """One pass over the train split in this process: peak RSS (MiB), the part reached during the pass, and
    samples/s."""
    from torch.utils.data import DataLoader

    from fd3d.data.dataset import NuScenesDataset, collate_samples
    from fd3d.data.stream import SceneStream, shard_files_of

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM): the pass, not the imports
    before = _status_mib("VmRSS")
    if kind == "dataroot":
        dataset = NuScenesDataset(root, "v1.0-trainval", "train", IMAGE_SIZE)
        loader = DataLoader(dataset, batch_size=1, shuffle=True, collate_fn=collate_samples)
    else:
        dataset = SceneStream(shard_files_of(root, "train"), IMAGE_SIZE, shuffle=True)
        loader = DataLoader(dataset, batch_size=1, collate_fn=collate_samples)
    start, samples = time.perf_counter(), 0
    for batch in loader:
        samples += len(batch["sample_token"])
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM")
    return {
        "loader": kind,
        "samples": samples,
        "peak_rss_mib": round(peak, 1),
        "pass_mib": round(peak - before, 1),
        "samples_per_s": round(samples / seconds, 1),
    }


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (Linux) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def prepare(work: Path, scenes: int, samples: int) -> tuple[Path, Path]:
    from fd3d.data.hf import export_parquet_shards
    from fd3d.data.synthetic import SyntheticConfig, generate

    root, shards = work / f"data_{scenes}x{samples}", work / f"shards_{scenes}x{samples}"
    if not (root / "v1.0-trainval" / "scene.json").is_file():
        size = {"scenes": scenes, "val_scenes": 2, "samples_per_scene": samples, "image_size": (224, 400)}
        config = SyntheticConfig(version="v1.0-trainval", seed=11, workers=2, **size)
        generate(root, config)
    if not (shards / "data" / "train").is_dir():
        export_parquet_shards(root, "v1.0-trainval", shards)
    return root, shards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/streaming_memory", help="OUT.json and OUT.md")
    parser.add_argument("--work", default="work/benchmark_streaming", help="generated data (reused)")
    parser.add_argument("--base-scenes", type=int, default=10)
    parser.add_argument("--samples-per-scene", type=int, default=10)
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    rows = []
    for factor in args.factors:
        scenes = args.base_scenes * factor
        root, shards = prepare(Path(args.work), scenes, args.samples_per_scene)
        for kind, path in tqdm([("dataroot", root), ("stream", shards)], desc=f"x{factor}", leave=False):
            command = [sys.executable, __file__, "--measure", kind, str(path)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            rows.append({"factor": factor, "train_scenes": scenes, **result})
            print(rows[-1])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| data | train samples | loader | peak RSS (MiB) | of which the pass (MiB) | samples/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| x{r['factor']} ({r['train_scenes']} scenes) | {r['samples']} | {r['loader']} | "
              f"{r['peak_rss_mib']} | {r['pass_mib']} | {r['samples_per_s']} |" for r in rows]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
