"""The registry of distillation methods: a method added in one place trains, and the distiller never
names one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from fd3d.config import load_config
from fd3d.config.catalog import distill_config
from fd3d.distill import DISTILL_LOSS_REGISTRY, Distiller, registered_losses
from fd3d.distill.alignment import resampling_conv
from fd3d.distill.pairing import FeaturePair
from fd3d.distill.registry import DistillationLoss, DistillationStep, register_distillation_loss
from tests.distill.test_distiller import batch_with_cars

FD3D_ROOT = Path(__file__).resolve().parents[2] / "fd3d"


class BevL1(DistillationLoss):
    """A method written for this test: L1 between the adapted apprentice BEV and the expert's."""

    def __init__(self, pair: FeaturePair, apprentice_channels: int, expert_channels: int) -> None:
        super().__init__()
        self.pair = pair
        self.adapter = resampling_conv(apprentice_channels, expert_channels, pair.upsample, kernel_size=1)

    @classmethod
    def from_config(cls, cfg, pairing) -> BevL1:
        pair = pairing.bev_pair()
        return cls(pair, *pairing.channels(pair))

    def forward(self, step: DistillationStep) -> dict[str, Tensor]:
        apprentice, expert = step.maps(self.pair)
        return {"loss_kd_bev_l1": F.l1_loss(self.adapter(apprentice), expert.detach())}


@pytest.fixture
def bev_l1():
    register_distillation_loss("bev_l1")(BevL1)
    yield
    DISTILL_LOSS_REGISTRY._obj_map.pop("bev_l1")


def test_a_method_registered_elsewhere_trains_with_its_own_value(bev_l1):
    cfg = load_config(distill_config("bevformer_cpu", "cwd"), ["DISTILL.LOSSES", "['bev_l1']"])
    torch.manual_seed(0)
    distiller = Distiller(cfg).train()
    batch = batch_with_cars(queue_length=0)
    losses = distiller(batch)
    assert [k for k in losses if k.startswith("loss_kd")] == ["loss_kd_bev_l1"] and distiller.head is None
    # recomputed by hand from the two detectors' BEVs and the method's own adapter
    with torch.no_grad():
        expert_bev = distiller.expert.extract_features(batch).bev
    apprentice_bev = distiller.apprentice.extract_features(batch).bev
    expected = (distiller.kd_modules["bev_l1"].adapter(apprentice_bev) - expert_bev).abs().mean()
    torch.testing.assert_close(losses["loss_kd_bev_l1"], expected)
    losses["loss_kd_bev_l1"].backward()
    assert distiller.kd_modules["bev_l1"].adapter.weight.grad.abs().sum() > 0


def test_every_shipped_method_is_registered_and_unknown_names_list_them():
    assert registered_losses() == ["cwd", "fitnet", "heatmap", "mgd", "qfd", "smgd"]
    cfg = load_config(distill_config("bevformer_cpu", "cwd"), ["DISTILL.LOSSES", "['cwd', 'kd']"])
    with pytest.raises(ValueError, match=r"\['cwd', 'fitnet', 'heatmap', 'mgd', 'qfd', 'smgd'\]"):
        Distiller(cfg)


def string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_neither_the_distiller_nor_the_engine_names_a_method():
    files = [FD3D_ROOT / "distill" / "distiller.py", *sorted((FD3D_ROOT / "engine").glob("*.py"))]
    for path in files:
        named = string_constants(path) & set(registered_losses())
        assert not named, f"{path.relative_to(FD3D_ROOT.parent)} names {sorted(named)}"
