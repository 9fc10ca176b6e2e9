#!/usr/bin/env python
"""Diagnose a distillation setup before (or instead of) a long study: does it take knowledge where the paper
says it should, and which term dominates the apprentice's gradient?

    python tools/diagnose_distillation.py --config-file configs/distill/pairs/bevformer_cpu.yaml \\
        --config-file configs/distill/methods/fd3d.yaml --steps 200 --out work/diagnose \\
        DISTILL.EXPERT.WEIGHTS work/expert/model

Trains the configured distillation for --steps steps (after DISTILL.HEAD.PRETRAIN_ITERS head-only steps,
if set) and measures:
- grad_norms: per term (the apprentice's detection loss, each distillation term) the L2 norm of its
  gradient at the apprentice's PV levels and BEV, averaged over every --measure-every-th step;
- focal_queries_per_step: focal queries per sample over the training steps;
then, with the trained head, on the first --samples samples of DATASETS.TEST_SPLIT:
- qfd_points_on_objects: share of the focal queries' QFD sampling points that lie on their matched
  ground-truth object (BEV footprint; PV: the projected box's image rectangle);
- focal_mask_coverage: share of each stage's apprentice grid covered by the focal-box masks;
- ray_artifact_index: expert-BEV activation 2-10 m behind objects along the ray from the ego over that of
  background at the same ranges (1 = no artefact; the paper's premise needs > 1).
Writes OUT/diagnostics.json and OUT/diagnostics.png.

A finished (or interrupted) run is measured as it is with --checkpoint, one of its training checkpoints
(OUTPUT_DIR/checkpoints/step_N, which holds the apprentice, the head and the distillation modules), and
the run's config: nothing is trained, and the gradient norms and focal queries are taken on the first
--steps training samples at the checkpoint's weights.

    python tools/diagnose_distillation.py --config-file ... --checkpoint RUN/checkpoints/step_00001000 \
        --steps 20 --samples 150 --out work/diagnose_trained KEY VALUE ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from fd3d.atomic import write_json_atomically
from fd3d.config import load_config
from fd3d.config.cli import OVERLAY_HELP
from fd3d.distill import build_training_model
from fd3d.engine.diagnose import measure_head, measure_without_training, train_and_measure
from fd3d.engine.trainer import prepare_training
from fd3d.evaluation.visualize import bev_footprint, feature_activation
from fd3d.hub import WEIGHTS_NAME, load_weights_into


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file",
        required=True,
        action="append",
        metavar="FILE",
        help=f"a distillation config: {OVERLAY_HELP}",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="where diagnostics.json/png go")
    parser.add_argument("--steps", type=int, default=200, help="distillation steps to train (default 200)")
    parser.add_argument("--measure-every", type=int, default=10, help="gradient norms every N steps")
    parser.add_argument("--samples", type=int, default=40, help="validation samples for the head measures")
    parser.add_argument(
        "--checkpoint",
        metavar="FOLDER",
        help="measure this training checkpoint of a run of the config instead of training (see above)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides")
    args = parser.parse_args(argv)
    for name in ("steps", "samples", "measure_every"):
        if getattr(args, name) < (1 if name == "measure_every" else 0):
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    return args


def checkpoint_weights(checkpoint: Path) -> Path:
    """The distiller's weights in a training checkpoint folder (or the file itself)."""
    weights = checkpoint / WEIGHTS_NAME if checkpoint.is_dir() else checkpoint
    if not weights.is_file():
        raise SystemExit(f"--checkpoint {checkpoint}: no {WEIGHTS_NAME} there (a training checkpoint folder)")
    return weights


def plot(diagnostics: dict, example: dict, path: Path) -> None:
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    norms = diagnostics["grad_norms"]
    terms = sorted(norms, key=lambda t: (t != "detection", t))
    stages = ["pv", "bev"]
    x = np.arange(len(terms))
    for offset, stage in zip((-0.2, 0.2), stages, strict=True):
        values = [norms[t].get(stage, 0.0) for t in terms]
        left.bar(x + offset, values, width=0.4, label=f"at the apprentice's {stage.upper()}")
    left.set_xticks(x, terms, rotation=30, ha="right")
    left.set_yscale("log")
    left.set_ylabel("gradient L2 norm (mean over measured steps)")
    left.set_title("Which term drives the apprentice's features")
    left.legend()
    if example:
        x0, y0, x1, y1 = example["extent"]
        right.imshow(feature_activation(example["bev"]), origin="lower", extent=(x0, x1, y0, y1), cmap="gray")
        for corners in bev_footprint(example["gt"]):
            right.fill(corners[:, 0], corners[:, 1], fill=False, edgecolor="lime", linewidth=1.2)
        points = example["points"]
        right.scatter(x0 + points[:, 0] * (x1 - x0), y0 + points[:, 1] * (y1 - y0), s=4, c="red")
        share = diagnostics["qfd_points_on_objects"]
        right.set_title(
            f"QFD samples of focal queries (red) on the expert BEV; GT green\n"
            f"{100 * share:.1f} % of all focal samples on their object (val)"
        )
        right.set_xlabel("x (m)")
        right.set_ylabel("y (m)")
    else:
        right.set_axis_off()
        right.text(0.5, 0.5, "no BEV focal query to draw", ha="center", va="center")
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    cfg = load_config(args.config_file, [*args.opts, "OUTPUT_DIR", str(out / "run")])
    if not cfg.DISTILL.LOSSES:
        raise SystemExit(
            f"{' + '.join(args.config_file)} configures no distillation (DISTILL.LOSSES is empty)"
        )
    torch.set_num_threads(2)
    if args.checkpoint:
        distiller = build_training_model(cfg)
        load_weights_into(distiller, checkpoint_weights(Path(args.checkpoint)))
        grad_norms, focal_per_sample = measure_without_training(
            distiller, cfg, args.steps, args.measure_every
        )
    else:
        run = prepare_training(cfg)
        grad_norms, focal_per_sample = train_and_measure(run, cfg, args.steps, args.measure_every)
        distiller = run.accelerator.unwrap_model(run.model)
    measures, example = measure_head(distiller, cfg, args.samples)
    diagnostics = {
        "config_files": args.config_file,
        "overrides": list(args.opts),
        "steps": args.steps,
        "checkpoint": args.checkpoint,
        "grad_norms": grad_norms,
        "focal_queries_per_step": float(np.mean(focal_per_sample)) if focal_per_sample else None,
        **measures,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out / "diagnostics.json", diagnostics)
    plot(diagnostics, example, out / "diagnostics.png")
    print(json.dumps({k: v for k, v in diagnostics.items() if k != "overrides"}, indent=2))
    print(f"wrote {out / 'diagnostics.json'} and {out / 'diagnostics.png'}")
    return diagnostics


if __name__ == "__main__":
    main()
