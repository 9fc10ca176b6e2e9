#!/usr/bin/env python
"""Convert an official BEVFormer / DETR3D checkpoint (mmcv format) into an fd3d model folder.

    python tools/convert_official_checkpoint.py --checkpoint detr3d_resnet101.pth \\
        --official-config projects/configs/detr3d/detr3d_res101_gridmask.py --out work/experts/detr3d_r101

The official config is read as plain Python (its `_base_` files resolved next to it; no mmcv needed).
Every option in it is mapped to an fd3d config value or refused by name; every weight is renamed (and the
box yaw converted to fd3d's convention); the conversion fails, naming them, on official entries left
unused, fd3d parameters left unfilled and shape mismatches. The output is a Hub-format folder
(config.json, model.safetensors, README.md naming the source files and their sha256) that
`fd3d.hub.from_pretrained`, `MODEL.WEIGHTS` and `DISTILL.EXPERT.WEIGHTS` take.

Converters exist for the official model types registered by the installed projects (DETR3D: "Detr3D").
Exit status 2 on a config or checkpoint that cannot be converted, with the reason.
"""

from __future__ import annotations

import argparse
import sys

from fd3d.official import ConversionError, OfficialConfigError, convert_checkpoint


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="official .pth file ({'meta', 'state_dict'})")
    parser.add_argument(
        "--official-config", required=True, help="the official mmcv config .py it was trained with"
    )
    parser.add_argument(
        "--out", required=True, help="model folder to write (replaced if it is an fd3d folder)"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="network input size before padding (default: nuScenes 900x1600 times the config's test scale)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = convert_checkpoint(args.checkpoint, args.official_config, args.out, args.image_size)
    except (OfficialConfigError, ConversionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.folder} ({result.cfg.MODEL.META_ARCHITECTURE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
