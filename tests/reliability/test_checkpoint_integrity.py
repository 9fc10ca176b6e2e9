"""Defect 6 of the reliability drill: a checkpoint whose weights had bits flipped (structure intact) is
found by its content digest and passed over on resume, with a warning naming it."""

from __future__ import annotations

import json
import struct

import pytest

from fd3d.engine.checkpoint import PROGRESS_FILE, checkpoint_problem, last_checkpoint, list_checkpoints
from fd3d.engine.trainer import train
from tests.engine.test_trainer import APPRENTICE, config


def _flip_a_mantissa_bit(path) -> None:
    """Flip the lowest mantissa bit of the first float32 after the safetensors header: the file keeps
    its structure and every header check passes."""
    data = bytearray(path.read_bytes())
    header = struct.unpack("<Q", data[:8])[0]
    data[8 + header] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_weight_bits_in_the_newest_checkpoint_are_found_and_passed_over(mini_dataroot, tmp_path):
    cfg = config(APPRENTICE, mini_dataroot, tmp_path, "SOLVER.MAX_ITER", "6")
    assert train(cfg, stop_after=4) is None
    (_, older), (_, newest) = list_checkpoints(tmp_path)
    assert set(json.loads((newest / PROGRESS_FILE).read_text())["sha256"]) >= {"model.safetensors"}
    _flip_a_mantissa_bit(newest / "model.safetensors")

    assert "model.safetensors has changed since it was written" in checkpoint_problem(newest)
    assert last_checkpoint(tmp_path)[1] == older
    with pytest.warns(UserWarning, match=rf"corrupt and left as they are: {newest}"):
        assert train(cfg, resume=True) is not None
