"""tools/diagnose_distillation.py end to end at toy scale: the keys the issue names, values, a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_model

from fd3d.config import distill_config, load_config
from fd3d.distill import build_training_model
from fd3d.engine.diagnose import measure_head, measure_without_training
from fd3d.hub import HubError
from tools.diagnose_distillation import main

ROOT = Path(__file__).resolve().parents[2]
# every matched query counts as focal, so a random head still has QFD samples to measure
ALL_MATCHED_FOCAL = ["DISTILL.HEAD.CONF_THRESH", "-1.0", "DISTILL.HEAD.GIOU_THRESH", "-2.0"]


def data(root: Path) -> list[str]:
    return ["DATASETS.DATAROOT", str(root), "DATASETS.VERSION", "v1.0-mini",
            "DATASETS.TRAIN_SPLIT", "mini_train", "DATASETS.TEST_SPLIT", "mini_val"]  # fmt: skip


def test_fd3d_diagnostics(mini_dataroot, tmp_path):
    pair, method = distill_config("bevformer_cpu", "fd3d")
    args = ["--config-file", str(pair), "--config-file", str(method), "--out", str(tmp_path),
            "--steps", "2", "--measure-every", "1", "--samples", "2",
            *data(mini_dataroot), *ALL_MATCHED_FOCAL, "SOLVER.MAX_ITER", "2"]  # fmt: skip
    result = main(args)
    stored = json.loads((tmp_path / "diagnostics.json").read_text())
    assert stored["qfd_points_on_objects"] == result["qfd_points_on_objects"]
    assert 0.0 <= stored["qfd_points_on_objects"] <= 1.0 and stored["qfd_points_counted"] > 0
    assert set(stored["grad_norms"]) == {"detection", "qfd", "smgd_pv0", "smgd_pv1", "smgd_bev"}
    assert stored["grad_norms"]["detection"]["bev"] > 0 and stored["grad_norms"]["smgd_bev"]["bev"] > 0
    assert set(stored["focal_mask_coverage"]) == {"pv0", "pv1", "bev"}
    assert all(0.0 < v <= 1.0 for v in stored["focal_mask_coverage"].values())
    assert stored["ray_artifact_index"] > 0 and stored["focal_queries_per_step"] > 0
    assert (tmp_path / "diagnostics.png").stat().st_size > 0


def test_a_config_without_distillation_is_named(mini_dataroot, tmp_path):
    with pytest.raises(SystemExit, match="configures no distillation"):
        main(["--config-file", str(ROOT / "projects/BEVFormer/configs/cpu_apprentice.yaml"),
              "--out", str(tmp_path), *data(mini_dataroot)])  # fmt: skip


def _config_args(mini_dataroot: Path) -> tuple[list[str], list[str]]:
    pair, method = distill_config("bevformer_cpu", "fd3d")
    return ["--config-file", str(pair), "--config-file", str(method)], [
        *data(mini_dataroot),
        *ALL_MATCHED_FOCAL,
    ]


def test_a_checkpoint_is_measured_as_it_is_without_training(mini_dataroot, tmp_path):
    files, overrides = _config_args(mini_dataroot)
    cfg = load_config([files[1], files[3]], overrides)
    torch.manual_seed(3)
    distiller = build_training_model(cfg)
    with torch.no_grad():  # a head unlike a fresh one: its last layer (QFD's) samples 3x farther out
        distiller.head.layers[-1].cross_attn.sampling_offsets.bias.mul_(3.0)
    checkpoint = tmp_path / "checkpoints" / "step_00000002"
    checkpoint.mkdir(parents=True)
    save_model(distiller, str(checkpoint / "model.safetensors"))
    before = (checkpoint / "model.safetensors").read_bytes()

    result = main([*files, "--checkpoint", str(checkpoint), "--steps", "1", "--measure-every", "1",
                   "--samples", "1", "--out", str(tmp_path / "diag"), *overrides])  # fmt: skip

    reference, example = measure_head(distiller, cfg, 1)  # the same weights, measured directly
    # the figure's points: every (x, y) sample of every focal query (all matched queries are focal here)
    samples_per_query = cfg.DISTILL.HEAD.NUM_HEADS * cfg.DISTILL.HEAD.NUM_POINTS
    assert example["points"].shape == (samples_per_query * len(example["gt"]), 2)
    for key in ("qfd_points_on_objects", "qfd_points_counted", "focal_mask_coverage", "ray_artifact_index"):
        assert result[key] == reference[key], key
    assert result["checkpoint"] == str(checkpoint)
    assert set(result["grad_norms"]) == {"detection", "qfd", "smgd_pv0", "smgd_pv1", "smgd_bev"}
    assert (checkpoint / "model.safetensors").read_bytes() == before

    torch.manual_seed(3)
    fresh = build_training_model(cfg)  # same draw, without the change: the measure must move
    fresh_measures, _ = measure_head(fresh, cfg, 1)
    assert fresh_measures["qfd_points_on_objects"] != result["qfd_points_on_objects"]


def test_measuring_leaves_the_weights_and_statistics_as_they_were(mini_dataroot):
    files, overrides = _config_args(mini_dataroot)
    cfg = load_config([files[1], files[3]], overrides)
    distiller = build_training_model(cfg)
    before = {k: v.clone() for k, v in distiller.state_dict().items()}
    norms, focal = measure_without_training(distiller, cfg, 2, 1)
    assert norms["detection"]["bev"] > 0 and len(focal) == 2
    assert all(torch.equal(before[k], v) for k, v in distiller.state_dict().items())


def test_a_checkpoint_of_another_config_is_named(mini_dataroot, tmp_path):
    files, overrides = _config_args(mini_dataroot)
    checkpoint = tmp_path / "step_00000001"
    checkpoint.mkdir()
    save_model(torch.nn.Linear(2, 2), str(checkpoint / "model.safetensors"))
    with pytest.raises(HubError, match="step_00000001.*do not fit"):
        main([*files, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "d"), *overrides])
    with pytest.raises(SystemExit, match="no model.safetensors"):
        main([*files, "--checkpoint", str(tmp_path), "--out", str(tmp_path / "d"), *overrides])
