"""The warm protocol's matched weights: one scale per method from its gradient norms, by hand."""

import pytest

from fd3d.config import distill_config, load_config
from fd3d.studies.calibration import gradient_share, loss_weights, matched_overrides
from fd3d.studies.protocols import PAIR


def test_gradient_share_by_hand():
    norms = {"detection": {"pv": 3.0, "bev": 4.0}, "smgd_pv0": {"pv": 1.0, "bev": 2.0}, "qfd": {"bev": 2.0}}
    distillation, detection = gradient_share(norms)
    assert detection == pytest.approx(5.0)  # sqrt(9 + 16)
    assert distillation == pytest.approx(3.0)  # sqrt(1 + 4 + 4)


def test_paper_weights_of_a_method_and_their_overrides():
    weights = loss_weights(load_config(distill_config(PAIR, "fd3d"), []))
    assert set(weights) == {"DISTILL.SMGD.WEIGHT", "DISTILL.QFD.WEIGHT"}
    found = {"matched_weights": {"DISTILL.SMGD.WEIGHT": 0.25, "DISTILL.QFD.WEIGHT": 1e-3}}
    assert matched_overrides(found) == ["DISTILL.SMGD.WEIGHT", "0.25", "DISTILL.QFD.WEIGHT", "0.001"]
