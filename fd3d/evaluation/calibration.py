"""Stage-wise loss weights: each distillation method's terms scaled so that, at each stage of the apprentice
(PV, BEV), they carry a stated fraction of the detection loss's gradient there.

Why per stage: at CPU scale the detection gradient at the apprentice's BEV and at its PV levels differ by
orders of magnitude, and a method's paper weights were set for tensors 8-64x larger; one scale for all of a
method's terms leaves its PV terms at several times the detection gradient while its BEV terms get a few
per cent of it. Measured on train batches early in a from-scratch run, never on a split a table reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def stage_gradient_norms(
    norms: Mapping[str, Mapping[str, float]], term_stages: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """{stage: {"distillation", "detection"}} gradient norms at each stage's own features.

    `norms` is {term group: {stage: norm}} (`fd3d.engine.diagnose.train_and_measure`: the group
    "detection" and one group per distillation term, e.g. "smgd_pv0"); `term_stages` maps each
    distillation group to the stage it distils. A stage's distillation norm is the root of the summed
    squares of its own terms' norms at that stage (PV terms are measured at the PV levels, BEV terms at the
    BEV, each where its weight acts)."""
    unknown = sorted(set(norms) - {"detection"} - set(term_stages))
    if unknown:
        raise ValueError(f"distillation terms {unknown} have no stage in {dict(term_stages)}")
    found: dict[str, dict[str, float]] = {}
    for stage in sorted(set(term_stages.values())):
        squares = [norms[term][stage] ** 2 for term, s in term_stages.items() if s == stage and term in norms]
        found[stage] = {
            "distillation": math.sqrt(sum(squares)),
            "detection": float(norms["detection"][stage]),
        }
    return found


def stage_scales(stage_norms: Mapping[str, Mapping[str, float]], fraction: float) -> dict[str, float]:
    """{stage: the `DISTILL.STAGE_SCALE` that makes its distillation gradient `fraction` x detection's}."""
    if not 0 < fraction < math.inf:
        raise ValueError(f"the gradient fraction must be a positive finite number, got {fraction}")
    scales = {}
    for stage, measured in stage_norms.items():
        if not measured["distillation"] > 0:
            raise ValueError(
                f"the distillation terms of stage {stage!r} had no gradient at the apprentice's features "
                f"({measured}); nothing to scale (did the distillation head find no focal query?)"
            )
        scales[stage] = fraction * measured["detection"] / measured["distillation"]
    return scales


def scale_overrides(scales: Mapping[str, float]) -> list[str]:
    """The KEY VALUE overrides of `scales`: ["DISTILL.STAGE_SCALE.PV", "0.3", ...]."""
    return [item for stage, scale in sorted(scales.items()) for item in
            (f"DISTILL.STAGE_SCALE.{stage.upper()}", repr(float(scale)))]  # fmt: skip


def loss_stage_scales(
    norms: Mapping[str, Mapping[str, float]],
    term_losses: Mapping[str, str],
    term_stages: Mapping[str, str],
    fraction: float,
) -> dict[str, dict[str, float]]:
    """{loss: {stage: the `DISTILL.LOSS_STAGE_SCALE` that gives it an equal share of `fraction`}}.

    Each stage's `fraction` of the detection gradient is split equally between the k losses with terms
    there: a loss's terms at a stage (norm: root of their summed squares, as in `stage_gradient_norms`)
    are scaled to `fraction / k` x detection. With one loss per stage this is `stage_scales` exactly.
    `norms` as in `stage_gradient_norms`; `term_losses` maps each distillation group to its loss."""
    if not 0 < fraction < math.inf:
        raise ValueError(f"the gradient fraction must be a positive finite number, got {fraction}")
    missing = sorted(set(term_stages) - set(term_losses))
    if missing:
        raise ValueError(f"distillation terms {missing} have no loss in {dict(term_losses)}")
    per_loss = {
        loss: stage_gradient_norms(
            {"detection": norms["detection"], **{t: norms[t] for t in term_stages if term_losses[t] == loss}},
            {t: s for t, s in term_stages.items() if term_losses[t] == loss},
        )
        for loss in sorted(set(term_losses.values()))
    }
    sharing = {
        stage: sum(stage in found for found in per_loss.values()) for stage in set(term_stages.values())
    }
    return {
        loss: {stage: stage_scales({stage: measured}, fraction / sharing[stage])[stage]
               for stage, measured in found.items()}
        for loss, found in per_loss.items()
    }  # fmt: skip
