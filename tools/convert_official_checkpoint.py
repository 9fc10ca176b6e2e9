#!/usr/bin/env python
"""Convert an official BEVFormer / DETR3D checkpoint (mmcv format) into an fd3d model folder.

    python tools/convert_official_checkpoint.py --checkpoint detr3d_resnet101.pth \\
        --official-config detr3d/projects/configs/detr3d/detr3d_res101_gridmask.py --out work/detr3d_r101
    python tools/convert_official_checkpoint.py --checkpoint detr3d_resnet101.pth \\
        --config-file projects/DETR3D/configs/official_r101_dcn.yaml --out work/detr3d_r101

The architecture comes from the official config, read as plain Python (its `_base_` files resolved next
to it; no mmcv needed), or from an fd3d config shipped for a released checkpoint. Every official option is
mapped to an fd3d config value or refused by name; every weight is renamed (and the box yaw converted to
fd3d's convention); the conversion fails, naming them, on official entries left unused, fd3d parameters
left unfilled and shape mismatches, and then writes nothing. The output is a Hub-format folder
(config.json, model.safetensors, README.md naming the source files and their sha256) that
`fd3d.hub.from_pretrained`, `MODEL.WEIGHTS` and `DISTILL.EXPERT.WEIGHTS` take.

--write-config FILE writes the fd3d config of an official config as a YAML overlay of the detector's
base config, projects/<Name>/configs/Base-<Name>.yaml (how projects/DETR3D/configs/official_r101_dcn.yaml
was made); --checkpoint is then optional.
Exit status 2 on a config or checkpoint that cannot be converted, with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from fd3d.atomic import write_text_atomically
from fd3d.config import config_overlay, load_config
from fd3d.official import ConversionError, OfficialConfigError, convert_checkpoint
from fd3d.official.convert import fd3d_config_of_official

PROJECTS = Path(__file__).resolve().parents[1] / "projects"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", help="official .pth file ({'meta', 'state_dict'})")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--official-config", help="the official mmcv config .py the checkpoint was trained with"
    )
    source.add_argument(
        "--config-file",
        action="append",
        help="fd3d config of the architecture (projects/*/configs/official_*.yaml); repeat to merge overlays",
    )
    parser.add_argument("--out", help="model folder to write (replaced if it is an fd3d model folder)")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="network input size before padding (default: nuScenes 900x1600 times the config's test scale)",
    )
    parser.add_argument(
        "--skip-missing-bases", action="store_true", help="leave out _base_ files that are not there (listed)"
    )
    parser.add_argument(
        "--write-config", help="also write the fd3d config as a YAML overlay (--official-config)"
    )
    args = parser.parse_args(argv)
    if args.write_config and not args.official_config:
        parser.error("--write-config needs --official-config")
    if not args.checkpoint and not args.write_config:
        parser.error("give --checkpoint (and --out) to convert, or --write-config")
    if args.checkpoint and not args.out:
        parser.error("--checkpoint needs --out")
    return args


def write_overlay(official_config: str, image_size, skip: bool, path: str) -> list[str]:
    cfg, notes = fd3d_config_of_official(official_config, image_size, skip)
    architecture = cfg.MODEL.META_ARCHITECTURE
    base_file = PROJECTS / architecture / "configs" / f"Base-{architecture}.yaml"
    overlay = config_overlay(cfg, load_config(base_file))
    header = (
        f"# {cfg.MODEL.META_ARCHITECTURE} as in the official {Path(official_config).name}, written by\n"
        "# tools/convert_official_checkpoint.py --write-config; convert its checkpoint with --config-file.\n"
        + "".join(f"# note: {note}\n" for note in notes)
    )
    target = Path(path)
    base = os.path.relpath(base_file, target.parent.resolve())  # _BASE_ resolves relative to the file
    body = yaml.safe_dump({"_BASE_": base, **overlay}, sort_keys=False)
    write_text_atomically(target, header + body)
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.write_config:
            write_overlay(args.official_config, args.image_size, args.skip_missing_bases, args.write_config)
            print(f"wrote {args.write_config}")
        if args.checkpoint:
            result = convert_checkpoint(
                args.checkpoint,
                args.out,
                official_config=args.official_config,
                config_file=args.config_file,
                image_size=args.image_size,
                skip_missing_bases=args.skip_missing_bases,
            )
            for note in result.notes:
                print(f"note: {note}")
            print(f"wrote {result.folder} ({result.cfg.MODEL.META_ARCHITECTURE})")
    except (OfficialConfigError, ConversionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
