#!/usr/bin/env python
"""A trained model deployed four ways, side by side: PyTorch eager, onnxruntime fp32, fp16 and int8.

    python tools/benchmark_deploy.py --model projects/BEVFormer/zoo/cpu_apprentice_bev50_fd3d \\
        --dataroot work/study/data --version v1.0-trainval --split val --out work/deploy/fd3d

Exports the model (fd3d.deploy, fp32), writes its fp16 copy and its int8 copy (static quantisation of
convolutions and matrix products, activation ranges from --calibration-frames frames of
--calibration-split streamed through the fp32 graph), then streams --split through each runtime frame by
frame (the host loop: BEV fed back, reset at a scene change, CAN-bus deltas) and scores each with the
official devkit. Latency: median frames/s of one frame over --iterations runs after --warmup, with
--threads intra-op threads for every runtime. OUT/results.{md,json}, OUT/*.onnx.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.data.cli import add_dataroot_arguments
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.deploy.onnx_export import (
    eager_runner,
    export_onnx,
    frames_per_second,
    graph_inputs,
    onnx_runner,
    stream,
)
from fd3d.deploy.precision import to_fp16, to_int8
from fd3d.evaluation.nuscenes_eval import Detections, evaluate_detections
from fd3d.hub import from_pretrained


def recorded_inputs(run, samples, info: dict, count: int) -> list[list]:
    """The graph inputs of the first `count` frames of `samples`, as the host loop forms them."""
    recorded: list[list] = []

    def recording(inputs):
        recorded.append(list(inputs))
        return run(inputs)

    for _ in itertools.islice(stream(recording, samples, info), count):
        pass
    return recorded


def score(runner, dataset: NuScenesDataset, info: dict, split: str, out: Path) -> dict:
    samples = (dataset[i] for i in range(len(dataset)))
    detections = {token: Detections(*outputs[:3]) for token, outputs in stream(runner, samples, info)}
    metrics = evaluate_detections(dataset.reader, detections, split, out)
    return {"NDS": metrics["NDS"], "mAP": metrics["mAP"]}


def table(rows: dict[str, dict], threads: int, name: str) -> str:
    base = rows["eager"]
    lines = [
        f"{name}: {threads} intra-op threads for every runtime; NDS / mAP on the split; frames/s: one frame",
        "",
        "| runtime | NDS | ΔNDS | mAP | frames/s | × eager | file MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for runtime, row in rows.items():
        size = "" if row.get("mb") is None else f"{row['mb']:.1f}"
        lines.append(
            f"| {runtime} | {row['NDS']:.4f} | {row['NDS'] - base['NDS']:+.4f} | {row['mAP']:.4f} "
            f"| {row['fps']:.1f} | ×{row['fps'] / base['fps']:.2f} | {size} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model folder (save_pretrained) or Hub id")
    add_dataroot_arguments(parser, "--split")
    parser.add_argument(
        "--calibration-split", default="train", help="int8 calibration frames' split (default train)"
    )
    parser.add_argument("--calibration-frames", type=int, default=40, help="default %(default)s")
    parser.add_argument("--out", required=True, help="folder for the .onnx files and results.{md,json}")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=20, help="timed runs (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    detector = from_pretrained(args.model).eval()
    data = {
        "image_size": detector.image_size,
        "pc_range": detector.pc_range.tolist(),
        "resize": detector.resize_mode,
    }
    dataset = NuScenesDataset(args.dataroot, args.version, args.split, **data)
    example = collate_samples([dataset[0]])
    fp32 = export_onnx(detector, example, out / "fp32.onnx").path
    fp32_run, info = onnx_runner(fp32, args.threads)
    calibration_set = NuScenesDataset(args.dataroot, args.version, args.calibration_split, **data)
    calibration = (calibration_set[i] for i in range(len(calibration_set)))
    recorded = recorded_inputs(fp32_run, calibration, info, args.calibration_frames)
    files = {
        "onnxruntime fp32": fp32,
        "onnxruntime fp16": to_fp16(fp32, out / "fp16.onnx"),
        "onnxruntime int8": to_int8(fp32, out / "int8.onnx", recorded),
    }
    runners = {"eager": eager_runner(detector)}
    runners.update({runtime: onnx_runner(path, args.threads)[0] for runtime, path in files.items()})
    inputs = graph_inputs(detector, example)
    rows = {}
    for runtime, runner in runners.items():
        found = score(runner, dataset, info, args.split, out / runtime.replace(" ", "_"))
        found["fps"] = frames_per_second(runner, inputs, args.iterations, args.warmup)
        found["mb"] = files[runtime].stat().st_size / 1e6 if runtime in files else None
        rows[runtime] = found
        print(
            f"{runtime:<18} NDS {found['NDS']:.4f} mAP {found['mAP']:.4f} {found['fps']:7.1f} frames/s",
            flush=True,
        )
    calibrated = {"split": args.calibration_split, "frames": args.calibration_frames}
    result = {"model": args.model, "split": args.split, "threads": args.threads, "calibration": calibrated,
              "runtimes": rows}  # fmt: skip
    write_json_atomically(out / "results.json", result)
    shown = table(rows, args.threads, Path(args.model).name)
    write_text_atomically(out / "results.md", shown)
    print(shown)
    return result


if __name__ == "__main__":
    main()
