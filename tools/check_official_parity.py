#!/usr/bin/env python
"""Run a converted official model on the official code's inputs and compare with its outputs.

    python tools/check_official_parity.py --model work/official/detr3d \\
        --inputs ../shared/fixtures/official/detr3d_inputs.pt \\
        --reference ../shared/fixtures/official/detr3d_outputs.pt

INPUTS is the layout of ../shared/fixtures/official/*_inputs.pt: per frame `img` (1, 6, 3, H, W), already
normalised and padded, and `img_metas` (`lidar2img`, ...); optionally `img_raw` (uint8 BGR before
normalisation) for --from-raw, which feeds those through fd3d's own preprocessing instead. Prints the max
abs difference of every output both sides have (FPN levels, `all_cls_scores` and `all_bbox_preds` of
every decoder layer, `boxes_3d` (yaw as an angle), `scores_3d`, `bev_embed`) and how many `labels_3d`
differ, per frame; exits 1 when a difference exceeds --tolerance or a label differs, 2 on unusable input.
--dump writes fd3d's outputs in the reference file's layout and conventions ({'frames': [...]}, boxes_3d
in mmdet3d 0.17's convention: z at the bottom, yaw with heading (-sin, -cos)).
"""

from __future__ import annotations

import argparse
import pickle
import sys

import torch

from fd3d.atomic import write_atomically
from fd3d.hub import HubError, from_pretrained
from fd3d.official.parity import compare_frames, run_frames


def load_tensors_file(path: str, option: str) -> object:
    """A user-given `.pt` file read with `weights_only=True`: tensors, numbers, strings and containers only,
    so a pickle that would run code when unpickled is refused (named) instead of executed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{option} {path} holds objects other than tensors and plain containers; it is not loaded, "
            f"because unpickling them could run code ({str(error).splitlines()[0]})"
        ) from error


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="converted model folder (or Hub id)")
    parser.add_argument("--inputs", required=True, help="inputs file in the fixtures' layout")
    parser.add_argument("--reference", help="the official outputs to compare with (omit to only --dump)")
    parser.add_argument("--dump", help="write fd3d's outputs here in the reference layout")
    parser.add_argument(
        "--from-raw", action="store_true", help="preprocess `img_raw` with fd3d instead of `img`"
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs difference allowed (default 1e-4)"
    )
    args = parser.parse_args(argv)
    if not args.reference and not args.dump:
        parser.error("give --reference to compare, --dump to write the outputs, or both")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # the user's files first: a bad one is named before a model is built
        inputs = load_tensors_file(args.inputs, "--inputs")
        reference = load_tensors_file(args.reference, "--reference")["frames"] if args.reference else None
        model = from_pretrained(args.model)
        frames = run_frames(model, inputs, args.from_raw)
    except (HubError, OSError, KeyError, ValueError, NotImplementedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dump:
        write_atomically(args.dump, lambda partial: torch.save({"frames": frames}, partial))
        print(f"wrote {args.dump}")
    if reference is None:
        return 0
    if len(reference) != len(frames):
        print(f"error: {len(frames)} input frames but {len(reference)} reference frames", file=sys.stderr)
        return 2
    failed = False
    for index, (ours, theirs) in enumerate(zip(frames, reference, strict=True)):
        print(f"frame {index}")
        for name, value in compare_frames(ours, theirs).items():
            bad = value > (0 if name == "labels_3d" else args.tolerance)
            failed |= bad
            shown = f"{int(value)} differ" if name == "labels_3d" else f"{value:.2e}"
            print(f"  {name:<26} {shown}{'  > tolerance' if bad else ''}")
    print("parity FAILED" if failed else f"parity holds (tolerance {args.tolerance:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
