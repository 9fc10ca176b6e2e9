"""Defect 5 of the reliability drill: `--resume` with a changed config refuses what cannot apply (naming
each key with its saved and new value) instead of silently overriding it, and applies what can."""

from __future__ import annotations

import json

import pytest

from fd3d.config import ConfigError
from fd3d.engine.checkpoint import list_checkpoints
from fd3d.engine.run_config import RUN_CONFIG
from fd3d.engine.trainer import train
from tests.engine.test_trainer import APPRENTICE, config


@pytest.fixture
def half_run(mini_dataroot, tmp_path):
    """A run of 4 steps stopped after 2 (checkpoint at step 2)."""
    assert train(config(APPRENTICE, mini_dataroot, tmp_path), stop_after=2) is None
    return mini_dataroot, tmp_path


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("SOLVER.BASE_LR", "0.01", "SOLVER.BASE_LR: 0.001 -> 0.01"),
        ("MODEL.BACKBONE.DEPTHS", "[2, 2, 2, 2]", "MODEL.BACKBONE.DEPTHS: [1, 1, 1, 1] -> [2, 2, 2, 2]"),
    ],
)
def test_a_change_resume_cannot_apply_is_refused_by_key(half_run, key, value, shown):
    dataroot, out = half_run
    saved = json.loads((out / RUN_CONFIG).read_text())
    with pytest.raises(
        ConfigError, match=r"--resume in .*cannot change \(" + shown.replace("[", r"\[").replace("]", r"\]")
    ):
        train(config(APPRENTICE, dataroot, out, key, value), resume=True)
    assert json.loads((out / RUN_CONFIG).read_text()) == saved  # nothing rewritten
    assert not (out / "model").exists()


def test_a_longer_schedule_applies_on_resume_and_says_so(half_run, capsys):
    dataroot, out = half_run
    metrics = train(config(APPRENTICE, dataroot, out, "SOLVER.MAX_ITER", "6"), resume=True)
    assert metrics is not None
    assert "--resume applies the new SOLVER.MAX_ITER: 4 -> 6" in capsys.readouterr().out
    assert [step for step, _ in list_checkpoints(out)][-1] == 6
