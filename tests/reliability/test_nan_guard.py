"""Defect 7 of the reliability drill: the NaN guard names a checkpoint that is safe to resume from, and
tells a data fault (a non-finite input) from divergence."""

from __future__ import annotations

import math
import shutil

import pytest

from fd3d.engine import trainer
from fd3d.engine.checkpoint import list_checkpoints, newest_safe_checkpoint
from fd3d.engine.trainer import NonFiniteInputError, NonFiniteLossError, train
from tests.engine.test_trainer import APPRENTICE, config


def test_the_checkpoint_the_guard_names_resumes_at_a_sane_rate(mini_dataroot, tmp_path, monkeypatch):
    """From step 3 on the learning rate is 1e30: the update of step 3 ruins the weights, so the checkpoint
    of step 4 holds ruined weights; the guard must name an earlier one, and resuming from it at the normal
    rate trains to the end."""
    cfg = config(APPRENTICE, mini_dataroot, tmp_path, "SOLVER.CHECKPOINT_PERIOD", "1", "SOLVER.MAX_ITER", "8")
    real_step = trainer.training_step

    def step_with_exploding_lr(run, batch, cfg):
        if run.step >= 3:
            for group in run.optimizer.param_groups:
                group["lr"] = 1e30
        return real_step(run, batch, cfg)

    monkeypatch.setattr(trainer, "training_step", step_with_exploding_lr)
    with pytest.raises(NonFiniteLossError, match="diverged") as caught:
        train(cfg)
    message = str(caught.value)
    failed_at = int(message.split("at step ")[1].split(":")[0])
    named = int(message.split("last good checkpoint is ")[1].split("step_")[1][:8])
    assert named < failed_at and named <= 3
    for step, folder in list_checkpoints(tmp_path):
        if step > named:
            shutil.rmtree(folder)
    monkeypatch.setattr(trainer, "training_step", real_step)
    metrics = train(cfg, resume=True)
    assert metrics is not None and math.isfinite(metrics["NDS"])


def test_a_nan_box_in_the_input_is_reported_as_a_data_problem_naming_the_sample(
    mini_dataroot, tmp_path, monkeypatch
):
    cfg = config(APPRENTICE, mini_dataroot, tmp_path, "SOLVER.CHECKPOINT_PERIOD", "1")
    real_batches = trainer.batches

    def batches_with_a_nan_box(run, cfg):
        for index, batch in enumerate(real_batches(run, cfg)):
            if index == 2:
                batch["gt_boxes"][0][0, 0] = math.nan
            yield batch

    monkeypatch.setattr(trainer, "batches", batches_with_a_nan_box)
    with pytest.raises(
        NonFiniteInputError, match=r"input at step 2: gt_boxes\[0\] of samples \['.*a data problem"
    ):
        train(cfg)
    # a data fault leaves the weights of step 2 intact: that checkpoint is the one to resume from
    assert newest_safe_checkpoint(tmp_path, 2)[0] == 2
