#!/usr/bin/env python
"""Score temporal models under both evaluation protocols (TEST.TEMPORAL_PROTOCOL) and time them.

    python tools/compare_temporal_protocols.py --dataroot work/study/data --version v1.0-trainval \\
        --split val --out work/protocols \\
        --weights projects/BEVFormer/zoo/cpu_expert projects/BEVFormer/zoo/cpu_apprentice_bev50

- "queue": every sample re-encodes its QUEUE_LENGTH previous keyframes (how fd3d's models train);
- "scene": the official test protocol, one BEV carried through each scene (`fd3d.evaluation.scene_protocol`).

Each model is scored by `--eval-only` under both, one after the other in this process (same threads, same
load); OUT/results.{md,json} hold NDS, mAP, the difference and the wall time of each evaluation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.config import load_config
from fd3d.data.cli import add_dataroot_arguments
from fd3d.engine.trainer import evaluate_only
from fd3d.hub import load_pretrained_config

PROTOCOLS = ("queue", "scene")


def compare(weights: str, args: argparse.Namespace) -> dict:
    """{"queue": {...}, "scene": {...}} for one model: metrics and seconds of each protocol."""
    cfg, _ = load_pretrained_config(weights)
    found = {"weights": weights, "queue_length": int(cfg.MODEL.BEVFORMER.QUEUE_LENGTH)}
    for protocol in PROTOCOLS:
        out = Path(args.out) / Path(weights).name / protocol
        overrides = ["MODEL.WEIGHTS", weights, "DATASETS.DATAROOT", args.dataroot, "DATASETS.VERSION",
                     args.version, "DATASETS.TEST_SPLIT", args.split, "TEST.TEMPORAL_PROTOCOL", protocol,
                     "OUTPUT_DIR", str(out)]  # fmt: skip
        start = time.perf_counter()
        metrics = evaluate_only(load_config(None, overrides))
        found[protocol] = {
            "NDS": metrics["NDS"],
            "mAP": metrics["mAP"],
            "seconds": time.perf_counter() - start,
        }
    return found


def table(rows: list[dict], threads: int) -> str:
    lines = [
        f"Evaluation protocols ({threads} torch threads; seconds: the whole `--eval-only`, scoring included)",
        "",
        "| model | queue | NDS queue | NDS scene | ΔNDS | mAP queue | mAP scene | s queue | s scene |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        queue, scene, name = row["queue"], row["scene"], Path(row["weights"]).name
        lines.append(
            f"| {name} | {row['queue_length']} | {queue['NDS']:.4f} | {scene['NDS']:.4f} "
            f"| {scene['NDS'] - queue['NDS']:+.4f} | {queue['mAP']:.4f} | {scene['mAP']:.4f} "
            f"| {queue['seconds']:.0f} | {scene['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataroot_arguments(parser, "--split")
    parser.add_argument("--weights", nargs="+", required=True, help="model folders or Hub ids (temporal)")
    parser.add_argument("--out", required=True, help="folder for each evaluation and results.{md,json}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [compare(weights, args) for weights in args.weights]
    out = Path(args.out)
    write_json_atomically(out / "results.json", {"threads": args.threads, "models": rows})
    shown = table(rows, args.threads)
    write_text_atomically(out / "results.md", shown)
    print(shown)
    return rows


if __name__ == "__main__":
    main()
