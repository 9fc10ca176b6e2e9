#!/usr/bin/env python
"""Draw the paper's Fig. 2 / Fig. 5 figures for one sample: feature activations and boxes in BEV.

Every --model NAME=FOLDER_OR_HUB_ID is loaded with `fd3d.hub.from_pretrained` (a folder written by
`save_pretrained` or the trainer, or a Hub id) and reads the sample at its own image size and queue
length. Written to OUT:

    bev_activation.png        BEV activation of every model that has a BEV (BEVFormer; not DETR3D)
    pv_activation_NAME.png    first-FPN-level activation over the six cameras, one file per model
    boxes_cameras_NAME.png    ground truth (green) and the model's predictions (blue) on the six cameras
    boxes_bev.png             ground truth (green) and predictions above --score-threshold (blue)

Example:
    python tools/visualize.py --dataroot work/data/mini --version v1.0-mini --split mini_val \\
        --sample-index 0 --model expert=work/expert/model --model apprentice=work/apprentice/model \\
        --model fd3d=work/fd3d/model --out work/vis

Prints the written files; a model or dataset that cannot be read, or a sample index outside the split,
prints the error and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from fd3d.data.cli import add_dataroot_arguments
from fd3d.data.nuscenes import DatasetError
from fd3d.evaluation.visualize import check_model_name, visualize_sample
from fd3d.hub import HubError, from_pretrained


def model_spec(text: str) -> tuple[str, str]:
    """`NAME=FOLDER_OR_HUB_ID` -> (name, location); argparse reports a bad one under --model."""
    name, sep, location = text.partition("=")
    if not sep or not name or not location:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER_OR_HUB_ID, got {text!r}")
    try:
        check_model_name(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return name, location


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataroot_arguments(parser, "--split")
    parser.add_argument("--sample-index", type=int, default=0, help="index of the sample in the split")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        type=model_spec,
        required=True,
        metavar="NAME=FOLDER_OR_HUB_ID",
        help="a model to draw, repeatable (at least one); NAME titles its panels and names its files",
    )
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    parser.add_argument(
        "--score-threshold", type=float, default=0.3, help="lowest score of a drawn prediction (default 0.3)"
    )
    args = parser.parse_args(argv)
    names = [name for name, _ in args.models]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        parser.error(f"argument --model: name(s) {repeated} given more than once")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        models = {name: from_pretrained(location) for name, location in args.models}
        written = visualize_sample(
            models,
            args.dataroot,
            args.version,
            args.split,
            args.sample_index,
            args.out,
            score_threshold=args.score_threshold,
        )
    except (HubError, DatasetError, IndexError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if "bev_activation" not in written:
        print(f"no bev_activation.png: none of {list(models)} has a BEV map")
    for path in written.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
