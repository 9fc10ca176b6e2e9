#!/usr/bin/env python
"""Inference speed (6-camera samples per second, batch 1) of detector configs at their own resolution.

Random weights and rig geometry, no dataset needed; the backbone's pretrained weights are not loaded.

    python tools/benchmark_inference.py --config-file projects/BEVFormer/configs/cpu_expert.yaml \\
        --config-file projects/BEVFormer/configs/cpu_apprentice.yaml --json speed.json
    python tools/benchmark_inference.py --onnx --config-file projects/DETR3D/configs/cpu_apprentice.yaml

Every --config-file is a config of its own, timed and compared with the first.

With --onnx each model is also exported (fd3d.deploy) and the deployable one-frame graph is timed in
PyTorch eager and in onnxruntime on the same inputs (for BEVFormer the previous BEV is an input, as when
streaming): median of --iterations after --warmup runs, both with --threads intra-op threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from fd3d.config.cli import add_config_arguments, configs_from_args
from fd3d.data.example_batch import example_batch
from fd3d.evaluation.complexity import inference_fps
from fd3d.modeling.registry import build_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_arguments(parser, multiple=True)
    parser.add_argument("--iterations", type=int, default=5, help="timed forward passes (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forward passes first (default 1)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--onnx", action="store_true", help="eager vs onnxruntime of the exported graph")
    parser.add_argument(
        "--hit-margin",
        type=float,
        default=None,
        help="--onnx, BEVFormer: cells gathered per camera = the rig's busiest camera's x this (default: "
        "export_onnx's); 0 gathers every cell for every camera (masked), the graph before hit slots",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.onnx:
        return onnx_benchmark(args)
    results = []
    for path, cfg in configs_from_args(args, extra=("MODEL.BACKBONE.PRETRAINED", "")):
        fps = inference_fps(
            build_model(cfg), tuple(cfg.INPUT.IMAGE_SIZE), args.iterations, args.warmup, args.device
        )
        results.append({"config": path, "device": args.device, "threads": args.threads, "fps": round(fps, 3)})
        print(f"{path:<45} {fps:8.3f} frames/s on {args.device}", flush=True)
    if len(results) > 1:
        base = results[0]["fps"]
        for entry in results[1:]:
            print(f"{entry['config']:<45} x{entry['fps'] / base:.2f} the speed of {results[0]['config']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def onnx_benchmark(args: argparse.Namespace) -> int:
    from fd3d.deploy.onnx_export import (
        DEFAULT_HIT_MARGIN,
        eager_runner,
        export_onnx,
        frames_per_second,
        graph_inputs,
        onnx_runner,
    )

    results = []
    for path, cfg in configs_from_args(args, extra=("MODEL.BACKBONE.PRETRAINED", "")):
        model = build_model(cfg).eval()
        example = example_batch(model.image_size)
        inputs = graph_inputs(model, example)
        with tempfile.TemporaryDirectory() as folder:
            margin = DEFAULT_HIT_MARGIN if args.hit_margin is None else args.hit_margin or float("inf")
            exported = export_onnx(model, example, Path(folder) / "model.onnx", hit_margin=margin)
            onnx_run, _ = onnx_runner(exported.path, args.threads)
            timed = {
                "eager": frames_per_second(eager_runner(model), inputs, args.iterations, args.warmup),
                "onnxruntime": frames_per_second(onnx_run, inputs, args.iterations, args.warmup),
            }
        entry = {
            "config": path,
            "threads": args.threads,
            "iterations": args.iterations,
            "export_s": exported.seconds,
            "export_slots": exported.export_slots,
        }
        entry.update({f"{name}_fps": round(fps, 3) for name, fps in timed.items()})
        entry["speedup"] = round(timed["onnxruntime"] / timed["eager"], 3)
        results.append(entry)
        print(
            f"{path:<45} eager {timed['eager']:7.2f} fps, onnxruntime {timed['onnxruntime']:7.2f} fps "
            f"(x{entry['speedup']:.2f}, {args.threads} threads, median of {args.iterations})",
            flush=True,
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
