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


OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason="official fixtures not present")
@pytest.mark.parametrize("name", ["bevformer_config.py", "detr3d_config.py"])
def test_official_configs_read_without_execution_equal_what_python_computes(name):
    """The reference: Python itself running the (trusted) fixture, its plain variables kept."""
    import runpy
    import types

    from fd3d.official.literal_config import literal_assignments

    executed = {
        key: value
        for key, value in runpy.run_path(str(OFFICIAL / name)).items()
        if not key.startswith("__") and not isinstance(value, (types.ModuleType, types.FunctionType, type))
    }
    assert literal_assignments(OFFICIAL / name) == executed


@pytest.mark.parametrize(
    "line",
    [
        "import os; os.makedirs(MARKER)",
        "x = __import__('os').makedirs(MARKER)",
        "x = open(MARKER, 'w')",
        "x = [os for os in (1,)]",
        "x = (lambda: 1)()",
        "x = dict(a=1).pop('a')",
    ],
)
def test_an_official_config_with_code_is_refused_and_the_code_never_runs(tmp_path, line):
    from fd3d.official import OfficialConfigError, load_official_config

    marker = tmp_path / "code-ran"
    config = tmp_path / "config.py"
    config.write_text(f"MARKER = {str(marker)!r}\nmodel = dict(a=1)\n{line}\n")
    with pytest.raises(OfficialConfigError, match=r"config.py:3: .* is not plain config data"):
        load_official_config(config)
    assert not marker.exists()
