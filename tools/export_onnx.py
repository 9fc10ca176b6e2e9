#!/usr/bin/env python
"""Export a model folder (any registered detector) to ONNX; optionally check it against PyTorch.

    python tools/export_onnx.py --model work/demo/live/fd3d/model --out work/demo/fd3d.onnx
    python tools/export_onnx.py --model work/demo/live/fd3d/model --out work/demo/fd3d.onnx --check \\
        --dataroot work/demo/data --version v1.0-trainval --split val

The graph is one frame at batch 1. Inputs: `images` (1, Ncam, 3, H, W) uint8 RGB at the model's input
size and `lidar2img` (1, Ncam, 4, 4) float32; a temporal model (BEVFormer) also takes `prev_bev`
(1, C, h, w) (its own `bev` output of the previous frame; zeros on a scene's first frame),
`curr2prev_lidar` (1, 4, 4) and `prev_exists` (1,) bool; a CAN-bus BEVFormer (the official architectures,
converted checkpoints) has the deployed signature of the TensorRT ports instead: `images`, `lidar2img`,
`can_bus` (1, 18) float32 (this frame's CAN bus with position and yaw turned into the change since the
scene's previous frame by the host: `fd3d.data.can_bus.host_can_bus`), `prev_bev`, `use_prev_bev` (1,)
bool; the rotate-and-shift alignment runs inside the graph. Outputs: `boxes_lidar` (K, 9) as
(x, y, z, w, l, h, yaw, vx, vy) in the LiDAR frame, `scores` (K,), `labels` (K,), `queries` (K,)
(the object query of each detection), `codes` (K, 10) (its raw regression code) and, for BEVFormer, `bev`
and `hits_dropped` (BEV cells the frame's rig hits beyond the `--hit-margin` slots per camera the graph
gathers: must be 0).

`--check` runs the file in onnxruntime and the model in PyTorch frame after frame over the whole split
(each feeding back its own BEV and resetting it where a scene starts), matches detections by (query,
label), prints the max abs difference of boxes, box codes, scores and BEV, scores both with the official
devkit, and exits 1 if box codes or scores differ by more than --tolerance, a detection is kept by one
runtime only (other than a tie at the top-k cut-off), or the NDS differs at 4 decimals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fd3d.data.cli import add_dataroot_arguments
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.data.example_batch import example_batch
from fd3d.deploy.onnx_export import DEFAULT_HIT_MARGIN, DEFAULT_OPSET, compare_runtimes, export_onnx
from fd3d.evaluation.nuscenes_eval import Detections, evaluate_detections
from fd3d.hub import from_pretrained


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model folder (save_pretrained) or Hub id")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with PyTorch on a split and score both")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs difference of box codes and scores"
    )
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--hit-margin",
        type=float,
        default=DEFAULT_HIT_MARGIN,
        help="BEVFormer: BEV cells gathered per camera = the export rig's busiest camera's x this "
        "(default %(default)s); a rig that needs more is refused frame by frame",
    )
    check = parser.add_argument_group("data for --check (its first frame is also the export rig)")
    add_dataroot_arguments(check, required=False)
    args = parser.parse_args(argv)
    if args.check and not args.dataroot:
        parser.error("--check needs --dataroot (and --version, --split) to run both runtimes on")
    out = Path(args.out)
    if out.is_dir():  # refused before the export runs, not after
        parser.error(f"--out {out} is a folder; give the .onnx file to write, e.g. {out / 'model.onnx'}")
    if not out.parent.is_dir():
        parser.error(f"--out {out}: its folder {out.parent} does not exist")
    return args


def score(dataset: NuScenesDataset, frames: list, split: str, out: Path) -> float:
    detections = {token: Detections(*outputs) for token, outputs in frames}
    return evaluate_detections(dataset.reader, detections, split, out)["NDS"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    detector = from_pretrained(args.model).eval()
    dataset, example, rig = None, example_batch(detector.image_size), "the nuScenes rig"
    if args.dataroot:
        dataset = NuScenesDataset(args.dataroot, args.version, args.split, detector.image_size,
                                  detector.pc_range.tolist(), resize=detector.resize_mode)  # fmt: skip
        example, rig = collate_samples([dataset[0]]), f"the rig of {args.split}'s first frame"
    result = export_onnx(detector, example, args.out, args.opset, args.hit_margin)
    name = type(detector).__name__
    print(f"exported {name} to {result.path} in {result.seconds:.1f} s (opset {result.opset})")
    print(f"  inputs  {', '.join(result.input_names)}\n  outputs {', '.join(result.output_names)}")
    if result.export_slots is not None:
        cells = f"{result.export_slots} BEV cells per camera ({rig} x {args.hit_margin})"
        print(f"  spatial cross-attention: {cells}")
    if not args.check:
        return 0
    samples = (dataset[i] for i in range(len(dataset)))
    comparison = compare_runtimes(detector, result.path, samples, args.threads, args.tolerance)
    print(f"onnxruntime vs PyTorch eager over {comparison.frames} frames of {args.split}:")
    for name, value in comparison.worst.items():
        print(f"  {name:<15} {value:.3g}")
    out = result.path.with_suffix("")
    nds = {
        name: score(dataset, frames, args.split, Path(f"{out}_check/{name}"))
        for name, frames in comparison.detections.items()
    }
    print(f"NDS: eager {nds['eager']:.4f}, onnxruntime {nds['onnx']:.4f}")
    bad = comparison.failures(args.tolerance)
    bad += ["NDS"] if f"{nds['eager']:.4f}" != f"{nds['onnx']:.4f}" else []
    if bad:
        print(f"check FAILED: {', '.join(bad)}", file=sys.stderr)
        return 1
    print("check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
