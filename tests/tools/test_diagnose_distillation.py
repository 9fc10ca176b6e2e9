"""tools/diagnose_distillation.py end to end at toy scale: the keys the issue names, values, a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fd3d.config import distill_config
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
