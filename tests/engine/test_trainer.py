"""The trainer end to end on a small synthetic dataroot: train, checkpoint, resume, evaluate, fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fd3d.config import ConfigError, distill_config, load_config
from fd3d.engine.checkpoint import list_checkpoints
from fd3d.engine.trainer import NonFiniteLossError, evaluate_only, train
from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from fd3d.hub import from_pretrained

ROOT = Path(__file__).resolve().parents[2]
APPRENTICE = "projects/DETR3D/configs/cpu_apprentice.yaml"


def config(path: str | list[Path], dataroot: Path, output: Path, *extra: str):
    """`path`: a config file relative to the repository, or config files merged in order."""
    overrides = [
        "DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "DATASETS.TEST_SPLIT", "mini_val",
        "OUTPUT_DIR", str(output), "SOLVER.MAX_ITER", "4", "SOLVER.WARMUP_ITERS", "1",
        "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.LOG_PERIOD", "1", "SOLVER.BASE_LR", "1e-3",
        *extra,
    ]  # fmt: skip
    return load_config(ROOT / path if isinstance(path, str) else path, overrides)


def test_training_writes_metrics_checkpoints_model_and_logs(mini_dataroot, tmp_path):
    cfg = config(APPRENTICE, mini_dataroot, tmp_path, "SOLVER.MAX_CHECKPOINTS_KEPT", "1")
    metrics = train(cfg)
    assert set(METRIC_KEYS) <= set(metrics)
    assert json.loads((tmp_path / "metrics.json").read_text())["NDS"] == metrics["NDS"]
    assert [step for step, _ in list_checkpoints(tmp_path)] == [4]  # only the newest is kept
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    model = from_pretrained(str(tmp_path / "model"))
    assert type(model).__name__ == "DETR3D"
    assert "NDS" in (tmp_path / "model" / "README.md").read_text()

    again = evaluate_only(
        load_config(None, ["MODEL.WEIGHTS", str(tmp_path / "model"), "DATASETS.DATAROOT", str(mini_dataroot),
                           "DATASETS.VERSION", "v1.0-mini", "DATASETS.TEST_SPLIT", "mini_val",
                           "OUTPUT_DIR", str(tmp_path / "again")])
    )  # fmt: skip
    assert again["NDS"] == pytest.approx(metrics["NDS"], abs=1e-9)


def test_killed_and_resumed_run_ends_with_the_same_weights(mini_dataroot, tmp_path):
    """Distillation included: the resumed run must restore optimizer, schedule, data order and RNG."""
    path = distill_config("detr3d_cpu", "fd3d")
    focal = ["DISTILL.HEAD.CONF_THRESH", "-1.0", "DISTILL.HEAD.GIOU_THRESH", "-2.0"]
    train(config(path, mini_dataroot, tmp_path / "straight", *focal))
    train(config(path, mini_dataroot, tmp_path / "resumed", *focal), stop_after=2)
    assert [step for step, _ in list_checkpoints(tmp_path / "resumed")] == [2]
    assert not (tmp_path / "resumed" / "model").exists()
    train(config(path, mini_dataroot, tmp_path / "resumed", *focal), resume=True)
    straight = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_nan_loss_names_the_term_and_keeps_the_checkpoint(mini_dataroot, tmp_path, monkeypatch):
    from fd3d_projects.DETR3D.detr3d import DETR3D

    original = DETR3D.losses
    calls = {"n": 0}

    def poisoned(self, outputs, batch):
        losses = original(self, outputs, batch)
        calls["n"] += 1
        if calls["n"] > 2:
            losses["loss_box"] = losses["loss_box"] * float("nan")
        return losses

    monkeypatch.setattr(DETR3D, "losses", poisoned)
    cfg = config(APPRENTICE, mini_dataroot, tmp_path)
    # the checkpoint of step 2 holds the weights that gave the NaN: it is not named as a place to resume
    with pytest.raises(
        NonFiniteLossError, match=r"step 2: loss_box=nan.*no intact checkpoint .* before step 1"
    ):
        train(cfg)
    ((step, folder),) = list_checkpoints(tmp_path)
    assert step == 2 and (folder / "model.safetensors").is_file()


def test_missing_dataroot_is_named(tmp_path):
    cfg = config(APPRENTICE, tmp_path / "no-such-root", tmp_path / "out")
    with pytest.raises(ConfigError, match="DATASETS.TRAIN_SPLIT 'mini_train' cannot be read: .*no-such-root"):
        train(cfg)


def test_resume_from_a_folder_that_is_not_a_checkpoint_is_named(mini_dataroot, tmp_path):
    (tmp_path / "checkpoints" / "step_00000002").mkdir(parents=True)
    cfg = config(APPRENTICE, mini_dataroot, tmp_path)
    with pytest.raises(FileNotFoundError, match="step_00000002 is not an fd3d checkpoint"):
        train(cfg, resume=True)


def test_eval_only_refuses_an_unwritable_output_dir_before_predicting(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    predicted = []
    monkeypatch.setattr("fd3d.engine.trainer.from_pretrained", lambda *a: predicted.append(a))
    cfg = load_config(None, ["MODEL.WEIGHTS", "any/model", "OUTPUT_DIR", str(blocker / "eval")])
    with pytest.raises(ConfigError, match="OUTPUT_DIR .*a-file/eval.* is not writable"):
        evaluate_only(cfg)
    assert predicted == []  # nothing loaded or predicted
