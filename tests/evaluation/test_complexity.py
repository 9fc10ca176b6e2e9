"""FLOP counting covers every costly operator, and custom handles count what they claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from fd3d.config import load_config
from fd3d.evaluation.complexity import count_flops, deform_conv2d_flop, scaled_dot_product_attention_flop
from fd3d.modeling.backbone import ModulatedDeformConv2d
from fd3d.modeling.registry import build_model

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/


def test_deformable_convolution_counts_as_its_dense_convolution_plus_offsets():
    dcn = ModulatedDeformConv2d(4, 6, kernel_size=3, padding=1).eval()
    analysis = FlopCountAnalysis(dcn, (torch.rand(1, 4, 5, 7),))
    analysis.set_op_handle("torchvision::deform_conv2d", deform_conv2d_flop)
    analysis.unsupported_ops_warnings(False)
    offset_channels = dcn.conv_offset.out_channels  # 3 * 9 for offsets (x, y) and the mask
    dense = 6 * 5 * 7 * 4 * 9
    offsets = offset_channels * 5 * 7 * 4 * 9
    assert analysis.total() == dense + offsets


class _Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def test_attention_handle_counts_both_products():
    q, k = torch.rand(2, 3, 5, 8), torch.rand(2, 3, 7, 8)
    analysis = FlopCountAnalysis(_Attention(), (q, k, k))
    analysis.set_op_handle("aten::scaled_dot_product_attention", scaled_dot_product_attention_flop)
    assert analysis.total() == 2 * 2 * 3 * 5 * 7 * 8  # QK^T and AV, batch 2, 3 heads, L 5, S 7, E 8


@pytest.mark.parametrize(
    "config", ["BEVFormer/configs/cpu_apprentice.yaml", "DETR3D/configs/cpu_apprentice.yaml"]
)
def test_every_operator_is_counted_or_deliberately_ignored(config):
    cfg = load_config(PROJECTS / config)
    report = count_flops(build_model(cfg), tuple(cfg.INPUT.IMAGE_SIZE))
    assert report.skipped_ops == {}
    assert sum(report.by_module.values()) == pytest.approx(report.gflops, rel=1e-6)
    # the trunk alone, counted directly, matches its share of the detector
    backbone = build_model(cfg).backbone.eval()
    alone = FlopCountAnalysis(backbone, (torch.rand(6, 3, *cfg.INPUT.IMAGE_SIZE),))
    alone.unsupported_ops_warnings(False)
    assert report.by_module["backbone"] == pytest.approx(alone.total() / 1e9, rel=1e-6)
    if cfg.MODEL.META_ARCHITECTURE == "BEVFormer":
        assert report.by_module["encoder"] > 0  # deformable attention (grid_sample) is counted


def test_count_flops_tool_writes_json(tmp_path):
    from tools.count_flops import main

    out = tmp_path / "flops.json"
    apprentice = str(PROJECTS / "DETR3D/configs/cpu_apprentice.yaml")
    assert main(["--config-file", apprentice, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["config"] == "DETR3D/cpu_apprentice.yaml"
    assert set(report) >= {"gflops", "params_m", "by_module"} and report["gflops"] > 0
    assert report["paper_gflops"] is None


def test_can_bus_bevformer_counts_its_can_bus_mlp_on_top():
    """The official architecture's CAN-bus input is built by the counter too: the count is the same model's
    plus the MLP's two linear layers, 18 x C/2 + C/2 x C multiply-adds (LayerNorm: counted as ~0)."""
    config = PROJECTS / "BEVFormer" / "configs" / "cpu_apprentice.yaml"
    reports = {}
    for use in (False, True):
        cfg = load_config(
            config, ["MODEL.BEVFORMER.USE_CAN_BUS", str(use), "MODEL.BEVFORMER.CAN_BUS_NORM", "False"]
        )
        torch.manual_seed(0)
        reports[use] = count_flops(build_model(cfg).eval(), tuple(cfg.INPUT.IMAGE_SIZE))
    dims = load_config(config).MODEL.HEAD.EMBED_DIMS
    added = (18 * dims // 2 + dims // 2 * dims) / 1e9
    assert reports[True].gflops - reports[False].gflops == pytest.approx(added, rel=1e-6)
