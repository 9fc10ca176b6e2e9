"""The studies' calibration step: measure each method's gradients at the apprentice's features once, store
the weights that match them to the detection loss's, and reuse them for every seed.

A method's paper weights were set for other tensors; comparing methods at those weights compares their
weights as much as their mechanisms. The generic measurement per stage is `fd3d.evaluation.calibration`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fd3d.atomic import write_json_atomically
from fd3d.config import load_config
from fd3d.distill.distiller import build_training_model
from fd3d.engine.diagnose import train_and_measure
from fd3d.engine.trainer import prepare_training
from fd3d.evaluation.calibration import loss_stage_scales, stage_gradient_norms, stage_scales
from fd3d.studies.protocols import MATCHED_FRACTION, STUDY_HEAD_PRETRAIN, Method, head_overrides


def loss_weights(cfg) -> dict[str, float]:
    """{config key: value} of the loss weights of the configured distillation terms."""
    return {
        f"DISTILL.{loss.upper()}.WEIGHT": float(cfg.DISTILL[loss.upper()].WEIGHT)
        for loss in cfg.DISTILL.LOSSES
    }


def gradient_share(norms: Mapping) -> tuple[float, float]:
    """(distillation, detection) gradient norms at the apprentice's PV and BEV features together."""

    def total(terms: list[str]) -> float:
        return sum(norms[t][stage] ** 2 for t in terms for stage in norms[t]) ** 0.5

    return total([t for t in norms if t != "detection"]), total(["detection"])


def matched_calibration(name: str, method: Method, out: Path, overrides: list[str], steps: int) -> dict:
    """The warm protocol's: gradient norms of a method's terms at the warm-start apprentice, and the weight
    scale that matches them to MATCHED_FRACTION of the detection loss's (one scale for all of a method's
    terms, keeping the paper's ratio between them). Stored in OUT/warm/calibration/<name>.json and reused."""
    target = out / f"{name}.json"
    if target.is_file():
        return json.loads(target.read_text())
    scratch = out / "scratch" / name
    cfg = load_config(method.config, [*overrides, *method.overrides, "OUTPUT_DIR", str(scratch)])
    print(f"[calibrate] {name}: {steps} steps from the warm start", flush=True)
    norms, _ = train_and_measure(prepare_training(cfg), cfg, steps, 2)
    distillation, detection = gradient_share(norms)
    scale = MATCHED_FRACTION * detection / distillation
    paper = loss_weights(cfg)
    result = {
        "grad_norms": norms,
        "distillation_grad_norm": distillation,
        "detection_grad_norm": detection,
        "scale": scale,
        "paper_weights": paper,
        "matched_weights": {key: value * scale for key, value in paper.items()},
        "matched_fraction": MATCHED_FRACTION,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(target, result)
    return result


def matched_overrides(calibration: Mapping) -> list[str]:
    """The KEY VALUE overrides of a `matched_calibration`'s matched weights."""
    return [item for key, value in calibration["matched_weights"].items() for item in (key, repr(value))]


def stage_calibration(
    name: str, method: Method, out: Path, results: Path, base: list[str], plan: Mapping
) -> dict:
    """The distillation study's: the method's stage scales (stored in RESULTS/calibration/<name>.json and
    reused), from its gradient norms per stage over the first `calibration_steps` train steps of a
    from-scratch run at the paper's weights (seed 0), bringing each stage to `fraction` of the detection
    gradient there."""
    target = results / "calibration" / f"{name}.json"
    if target.is_file():
        return json.loads(target.read_text())
    scratch = out / "calibration" / "scratch" / name
    overrides = [*base, *head_overrides(method, STUDY_HEAD_PRETRAIN), "SEED", "0", "OUTPUT_DIR", str(scratch)]
    cfg = load_config(method.config, overrides)
    print(f"[calibrate] {name}: {plan['calibration_steps']} steps from scratch", flush=True)
    run = prepare_training(cfg)
    _, term_stages = term_layout(run.accelerator.unwrap_model(run.model))
    norms, _ = train_and_measure(run, cfg, plan["calibration_steps"], plan["measure_every"])
    per_stage = stage_gradient_norms(norms, term_stages)
    scales = stage_scales(per_stage, plan["fraction"])
    result = {"grad_norms": norms, "stage_norms": per_stage, "stage_scales": scales,
              "fraction": plan["fraction"], "steps": plan["calibration_steps"]}  # fmt: skip
    write_json_atomically(target, result)
    return result


def term_layout(distiller) -> tuple[dict[str, str], dict[str, str]]:
    """({term group: its loss}, {term group: its stage}) of a distiller's methods (groups are the term
    names without "loss_kd_", as `train_and_measure` names them)."""
    losses, stages = {}, {}
    for loss, module in distiller.kd_modules.items():
        for term, stage in module.term_stages().items():
            losses[term.removeprefix("loss_kd_")] = loss
            stages[term.removeprefix("loss_kd_")] = stage
    return losses, stages


def balanced_calibration(
    name: str, method: Method, out: Path, results: Path, base: list[str], plan: Mapping
) -> dict:
    """The study's balanced weights (RESULTS/calibration/balanced/<name>.json, reused): from the same
    gradient norms as `stage_calibration`, each stage's `fraction` split equally between the losses with
    terms there (`loss_stage_scales`)."""
    target = results / "calibration" / "balanced" / f"{name}.json"
    if target.is_file():
        return json.loads(target.read_text())
    measured = stage_calibration(name, method, out, results, base, plan)
    cfg = load_config(method.config, [*base, *head_overrides(method, STUDY_HEAD_PRETRAIN)])
    term_losses, term_stages = term_layout(build_training_model(cfg))
    scales = loss_stage_scales(measured["grad_norms"], term_losses, term_stages, measured["fraction"])
    result = {"loss_stage_scales": scales, "term_losses": term_losses, "term_stages": term_stages,
              "fraction": measured["fraction"], "measured_in": f"calibration/{name}.json"}  # fmt: skip
    write_json_atomically(target, result)
    return result
