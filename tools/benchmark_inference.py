#!/usr/bin/env python
"""Inference speed (6-camera samples per second, batch 1) of detector configs at their own resolution.

Random weights and rig geometry, no dataset needed; the backbone's pretrained weights are not loaded.

    python tools/benchmark_inference.py --config-file configs/BEVFormer/cpu_expert.yaml \\
        --config-file configs/BEVFormer/cpu_apprentice.yaml --json speed.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from fd3d.config.cli import add_config_arguments, configs_from_args
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

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


if __name__ == "__main__":
    sys.exit(main())
