"""tools/benchmark_distillation_step.py at toy scale: both jobs timed, the ratio and the parts consistent."""

from __future__ import annotations

import json

import torch
from torch import nn

from tools.benchmark_distillation_step import CountedFlops, main


def test_counted_flops_of_a_convolution_by_hand():
    conv, x = nn.Conv2d(4, 8, 3, padding=1), torch.randn(2, 4, 5, 6, requires_grad=True)
    forward = 2 * (2 * 8 * 5 * 6) * (4 * 3 * 3)  # 2 per multiply-add: outputs x inputs per output
    with CountedFlops() as counted:
        out = conv(x)
    assert counted.total == forward
    with CountedFlops() as counted:
        out.sum().backward()  # the gradients of the input and of the weight: one forward's worth each
    assert counted.total == 2 * forward


def test_times_both_jobs_and_writes_the_result(mini_dataroot, tmp_path):
    out, profile = tmp_path / "step.json", tmp_path / "profile.txt"
    result = main(["--dataroot", str(mini_dataroot), "--work", str(tmp_path / "work"), "--steps", "2",
                   "--rounds", "1", "--out", str(out), "--profile", str(profile)])  # fmt: skip
    assert json.loads(out.read_text()) == result
    assert result["ratio"] == result["distillation_step_s"] / result["apprentice_step_s"] > 0
    for job in ("apprentice", "distillation"):
        parts = result["median_ms"][job]
        assert set(parts) == {"forward", "backward", "clip", "optimizer"}
        assert sum(parts.values()) <= 1000 * result[f"{job}_step_s"] * 1.5  # parts of the timed step
    # the distiller trains the head and the methods' modules on top of the apprentice
    assert result["parameter_tensors"]["distillation"] > result["parameter_tensors"]["apprentice"]
    # ... whose convolutions and matmuls are counted: more GFLOPs per step than the apprentice's
    gflops = result["training_gflops"]
    assert 0 < gflops["apprentice"] < gflops["distillation"]
    assert result["flop_ratio"] == gflops["distillation"] / gflops["apprentice"]
    assert "aten::" in profile.read_text()  # the torch.profiler table
    cache = list((tmp_path / "work" / "expert_cache").rglob("*.safetensors"))
    assert cache, "the expert's features were cached before timing"


def test_flops_only_times_nothing(mini_dataroot, tmp_path):
    result = main(["--dataroot", str(mini_dataroot), "--work", str(tmp_path / "work"), "--method", "fitnet",
                   "--flops-only"])  # fmt: skip
    assert "ratio" not in result and "median_ms" not in result
    gflops = result["training_gflops"]
    assert result["flop_ratio"] == gflops["distillation"] / gflops["apprentice"] > 1.0
