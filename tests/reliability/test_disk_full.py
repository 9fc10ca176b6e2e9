"""Defects 8 and 12 of the reliability drill: a checkpoint that cannot be written (a full disk) is named
with its path and frees its staging folder; `--eval-only` finds a full disk before predicting the split;
`export_onnx --out` naming a folder is refused before the export."""

from __future__ import annotations

import errno
import tempfile

import pytest
import torch

from fd3d.config import ConfigError
from fd3d.engine import trainer
from fd3d.engine.checkpoint import CheckpointWriteError, checkpoint_root, list_checkpoints
from fd3d.engine.trainer import train
from tests.engine.test_trainer import APPRENTICE, config
from tools.export_onnx import main as export_onnx


def test_a_checkpoint_on_a_full_disk_is_named_and_frees_its_staging(mini_dataroot, tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def save_on_a_disk_that_fills(obj, f, *args, **kwargs):
        calls["n"] += 1
        if "step_00000004" in str(f):  # the second checkpoint: the disk is full by then
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1024 vs 960")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_on_a_disk_that_fills)
    with pytest.raises(
        CheckpointWriteError, match=r"step 4 to .*\.tmp-step_00000004 .*unexpected pos.*MiB free"
    ):
        train(config(APPRENTICE, mini_dataroot, tmp_path))
    assert [step for step, _ in list_checkpoints(tmp_path)] == [2]  # the previous one intact
    assert not list(checkpoint_root(tmp_path).glob(".tmp-*"))  # no partial checkpoint left


def test_eval_only_finds_a_full_disk_before_predicting(mini_dataroot, tmp_path, monkeypatch):
    predicted = []
    monkeypatch.setattr(trainer, "_evaluate_into", lambda *args: predicted.append(1))

    class FullDisk:
        """A temporary file on a full disk: created, but no data fits."""

        def __init__(self, *args, **kwargs):
            self.file = tempfile.TemporaryFile(dir=kwargs.get("dir"))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", FullDisk)
    cfg = config(APPRENTICE, mini_dataroot, tmp_path / "out", "MODEL.WEIGHTS", str(tmp_path / "model"))
    with pytest.raises(ConfigError, match=r"OUTPUT_DIR .* is not writable: No space left on device"):
        trainer.evaluate_only(cfg)
    assert not predicted


def test_export_onnx_to_an_existing_folder_is_refused_before_exporting(tmp_path, capsys):
    with pytest.raises(SystemExit):
        export_onnx(["--model", str(tmp_path / "not-loaded"), "--out", str(tmp_path)])
    assert f"--out {tmp_path} is a folder" in capsys.readouterr().err
