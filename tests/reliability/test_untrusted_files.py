"""Defect 1 of the reliability drill: no code runs from a file a user hands fd3d.

A pickle whose object has a `__reduce__` runs that callable when unpickled with `weights_only=False`; the
callable here creates a marker folder, so the test sees whether the code ran, not only whether an error came.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tools.check_official_parity import main as check_parity


class _CreatesMarker:
    """Unpickling this object calls `os.makedirs(marker)`: the marker appears if and only if code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.mark.parametrize("option", ["--inputs", "--reference"])
def test_parity_tool_refuses_a_pickle_that_runs_code_and_names_the_file(tmp_path, capsys, option):
    marker = tmp_path / "code-ran"
    bad, plain = tmp_path / "bad.pt", tmp_path / "plain.pt"
    torch.save({"frames": [{"img": torch.zeros(1)}], "payload": _CreatesMarker(marker)}, bad)
    torch.save({"frames": []}, plain)
    files = {"--inputs": plain, "--reference": plain, option: bad}
    argv = ["--model", str(tmp_path / "no-model"), *(str(x) for kv in files.items() for x in kv)]

    assert check_parity(argv) == 2
    assert not marker.exists(), "unpickling the user's file ran its code"
    err = capsys.readouterr().err
    assert f"{option} {bad}" in err and "could run code" in err


def test_a_plain_tensor_file_still_loads(tmp_path, capsys):
    """The weights-only load keeps what the fixtures hold (tensors, dicts, lists, numbers, strings): the
    tool gets past the files and fails on the missing model, which it names."""
    plain = tmp_path / "plain.pt"
    torch.save({"frames": [{"img": torch.zeros(1, 6, 3, 4, 4), "img_metas": [{"scene_token": "a"}]}]}, plain)
    argv = ["--model", str(tmp_path / "no-model"), "--inputs", str(plain), "--reference", str(plain)]
    assert check_parity(argv) == 2
    err = capsys.readouterr().err
    assert "could run code" not in err and "no-model" in err
