"""A run is finished only with its info and its model; a finished run is reused, never trained again."""

import json

import pytest

from fd3d.studies import jobs
from fd3d.studies.dataset import data_overrides, splits
from fd3d.studies.protocols import ROOT


def finish(folder, seed: int, nds: float) -> dict:
    """A run folder as `run_job` leaves it (the weights' bytes do not matter here)."""
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.safetensors").write_bytes(b"weights")
    info = {"seed": seed, "metrics": {"NDS": nds}, "weights": str(folder / "model")}
    (folder / jobs.RUN_INFO).write_text(json.dumps(info))
    return info


def test_finished_run_needs_its_info_and_its_model(tmp_path):
    assert jobs.finished_run(tmp_path) is None
    (tmp_path / jobs.RUN_INFO).write_text("{}")
    assert jobs.finished_run(tmp_path) is None  # info without a model: interrupted while saving
    (tmp_path / jobs.RUN_INFO).unlink()
    info = finish(tmp_path, 3, 0.4)
    assert jobs.finished_run(tmp_path) == info


def test_finished_seeds_and_reported_run(tmp_path):
    first = finish(tmp_path / "seed0", 0, 0.3)
    third = finish(tmp_path / "seed2", 2, 0.5)
    assert jobs.finished_seeds(tmp_path, [0, 1, 2]) == [first, third]
    assert jobs.reported_run(tmp_path / "seed2", "fd3d") == third
    with pytest.raises(SystemExit, match="no finished fd3d in .*seed1"):
        jobs.reported_run(tmp_path / "seed1", "fd3d")


def test_run_job_reuses_a_finished_run_without_training(tmp_path, monkeypatch):
    info = finish(tmp_path, 1, 0.35)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(jobs, "train", no_training)
    assert jobs.run_job("fd3d", [ROOT / "x.yaml"], tmp_path, []) == info


def test_shown_configs_and_overrides(tmp_path):
    assert (
        jobs.shown([ROOT / "configs" / "a.yaml", tmp_path / "b.yaml"])
        == f"configs/a.yaml + {tmp_path}/b.yaml"
    )
    assert jobs.expert_overrides(tmp_path, {"weights": "w"}) == [
        "DISTILL.EXPERT.WEIGHTS", "w", "DISTILL.EXPERT.FEATURE_CACHE", str(tmp_path / "expert_cache")
    ]  # fmt: skip
    assert splits("v1.0-mini") == ("mini_train", "mini_val") and splits("v1.0-trainval") == ("train", "val")
    assert data_overrides(tmp_path, "v1.0-mini") == [
        "DATASETS.DATAROOT", str(tmp_path), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "DATASETS.TEST_SPLIT", "mini_val",
    ]  # fmt: skip
