"""`DISTILL.LOSS_STAGE_SCALE`: one method's terms at one stage scaled on their own, on top of the stage
scale, checked against the same distiller without it; bad entries named."""

from __future__ import annotations

import pytest
import torch

from fd3d.config import ConfigError, distill_config, load_config
from fd3d.distill import Distiller
from fd3d.distill.loss_stage_scale import loss_stage_entries, parse_loss_stage_scales
from tests.distill.test_distiller import ALL_MATCHED_FOCAL, batch_with_cars

STAGES_OF = {"smgd": ["pv", "bev", "pv"], "qfd": ["bev"]}


def kd_losses(*overrides: str) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = load_config(distill_config("bevformer_cpu", "fd3d"), [*ALL_MATCHED_FOCAL, *overrides])
    distiller = Distiller(cfg).train()
    torch.manual_seed(1)  # the same random masks (Eq. 5) in every call
    losses = distiller(batch_with_cars(queue_length=0))
    return {k: float(v.detach()) for k, v in losses.items() if k.startswith("loss_kd")}


def test_scales_multiply_only_their_loss_at_their_stage_and_compose_with_the_stage_scale():
    plain = kd_losses()
    assert set(plain) == {"loss_kd_smgd_pv0", "loss_kd_smgd_pv1", "loss_kd_smgd_bev", "loss_kd_qfd"}
    assert all(value > 0 for value in plain.values())
    scaled = kd_losses(
        "DISTILL.LOSS_STAGE_SCALE", "['smgd:bev=4.0', 'qfd:bev=0.5']", "DISTILL.STAGE_SCALE.BEV", "3.0"
    )
    # SMGD's PV terms untouched; its BEV term 4 x 3, QFD 0.5 x 3
    expected = {"loss_kd_smgd_pv0": 1, "loss_kd_smgd_pv1": 1, "loss_kd_smgd_bev": 12, "loss_kd_qfd": 1.5}
    for term, factor in expected.items():
        assert scaled[term] == pytest.approx(factor * plain[term], rel=1e-5), term


def test_entries_parse_and_round_trip():
    scales = {"smgd": {"pv": 0.75, "bev": 15.5}, "qfd": {"bev": 0.8}}
    entries = loss_stage_entries(scales)
    assert entries == ["qfd:bev=0.8", "smgd:bev=15.5", "smgd:pv=0.75"]
    assert parse_loss_stage_scales(entries, STAGES_OF) == {
        ("qfd", "bev"): 0.8,
        ("smgd", "bev"): 15.5,
        ("smgd", "pv"): 0.75,
    }
    assert parse_loss_stage_scales([" SMGD : BEV = 2 "], STAGES_OF) == {("smgd", "bev"): 2.0}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("smgd-bev=2", "must read LOSS:STAGE=SCALE"),
        ("mgd:bev=2", r"loss 'mgd' is not in DISTILL.LOSSES \['qfd', 'smgd'\]"),
        ("qfd:pv=2", r"'qfd' has terms at the stages \['bev'\], not 'pv'"),
        ("smgd:bev=-1", "non-negative finite number"),
        ("smgd:bev=inf", "non-negative finite number"),
        ("smgd:bev=x", "non-negative finite number"),
    ],
)
def test_bad_entries_are_named(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_loss_stage_scales([entry], STAGES_OF)


def test_a_pair_given_twice_is_named():
    with pytest.raises(ConfigError, match="gives smgd:bev twice"):
        parse_loss_stage_scales(["smgd:bev=1", "smgd:bev=2"], STAGES_OF)


def test_the_distiller_checks_entries_against_its_methods():
    with pytest.raises(ConfigError, match="DISTILL.LOSS_STAGE_SCALE entry 'fitnet:bev=2'"):
        kd_losses("DISTILL.LOSS_STAGE_SCALE", "['fitnet:bev=2']")
