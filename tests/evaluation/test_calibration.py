"""Stage and per-loss gradient calibration (fd3d.evaluation.calibration), by hand."""

import pytest

from fd3d.evaluation.calibration import (
    loss_stage_scales,
    scale_overrides,
    stage_gradient_norms,
    stage_scales,
)

# FD3D's layout: SMGD on two PV levels and the BEV, QFD on the BEV
NORMS = {
    "detection": {"pv": 2.0, "bev": 10.0},
    "smgd_pv0": {"pv": 0.3, "bev": 0.0},
    "smgd_pv1": {"pv": 0.4, "bev": 0.0},
    "smgd_bev": {"pv": 0.01, "bev": 0.2},
    "qfd": {"pv": 0.05, "bev": 4.0},
}
STAGES = {"smgd_pv0": "pv", "smgd_pv1": "pv", "smgd_bev": "bev", "qfd": "bev"}
LOSSES = {"smgd_pv0": "smgd", "smgd_pv1": "smgd", "smgd_bev": "smgd", "qfd": "qfd"}


def test_stage_norms_and_scales_by_hand():
    per_stage = stage_gradient_norms(NORMS, STAGES)
    assert per_stage["pv"] == pytest.approx({"distillation": 0.5, "detection": 2.0})  # sqrt(.09 + .16)
    assert per_stage["bev"]["distillation"] == pytest.approx((0.04 + 16.0) ** 0.5)
    scales = stage_scales(per_stage, 0.5)
    assert scales["pv"] == pytest.approx(0.5 * 2.0 / 0.5)
    assert scales["bev"] == pytest.approx(0.5 * 10.0 / 16.04**0.5)
    assert scale_overrides({"pv": 2.0}) == ["DISTILL.STAGE_SCALE.PV", "2.0"]


def test_loss_stage_scales_share_each_stage_equally_between_its_losses():
    scales = loss_stage_scales(NORMS, LOSSES, STAGES, 0.5)
    # the BEV holds two losses: each brought to 0.25 x detection there; the PV one: 0.5 x detection
    assert scales == {
        "smgd": {"pv": pytest.approx(0.5 * 2.0 / 0.5), "bev": pytest.approx(0.25 * 10.0 / 0.2)},
        "qfd": {"bev": pytest.approx(0.25 * 10.0 / 4.0)},
    }
    # at a stage scale of 1, SMGD's BEV term gets 12.5 x 0.2 = 2.5, QFD 0.625 x 4 = 2.5: equal shares
    assert scales["smgd"]["bev"] * 0.2 == pytest.approx(scales["qfd"]["bev"] * 4.0)


def test_one_loss_per_stage_gives_the_stage_scales():
    layout = {term: stage for term, stage in STAGES.items() if term != "qfd"}
    norms = {term: value for term, value in NORMS.items() if term != "qfd"}
    scales = loss_stage_scales(norms, LOSSES, layout, 0.5)
    assert scales["smgd"] == pytest.approx(stage_scales(stage_gradient_norms(norms, layout), 0.5))


def test_bad_calibration_inputs_are_named():
    with pytest.raises(ValueError, match=r"terms \['qfd'\] have no loss"):
        loss_stage_scales(NORMS, {k: v for k, v in LOSSES.items() if k != "qfd"}, STAGES, 0.5)
    with pytest.raises(ValueError, match="positive finite"):
        loss_stage_scales(NORMS, LOSSES, STAGES, 0.0)
    silent = {**NORMS, "qfd": {"pv": 0.0, "bev": 0.0}}
    with pytest.raises(ValueError, match="stage 'bev' had no gradient"):
        loss_stage_scales(silent, LOSSES, STAGES, 0.5)
