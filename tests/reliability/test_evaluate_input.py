"""Defect 9 of the reliability drill: `tools/evaluate.py` checks its results file before the devkit
(whose checks are asserts, gone under `python -O`) and names the file, the sample and the field."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import pytest

from fd3d.data.nuscenes import NuScenesReader
from fd3d.evaluation.nuscenes_eval import Detections, build_submission
from tests.engine.test_trainer import ROOT
from tools.evaluate import main as evaluate


@pytest.fixture(scope="module")
def good_submission(mini_dataroot) -> dict:
    reader = NuScenesReader(mini_dataroot, "v1.0-mini")
    box = Detections([[1.0, 2.0, 0.0, 2.0, 4.0, 1.5, 0.3, 0.0, 0.0]], [0.9], [0])
    return build_submission(reader, {token: box for token in reader.sample_tokens("mini_val")})


def _run(mini_dataroot, tmp_path, text: str) -> str:
    results = tmp_path / "results.json"
    results.write_text(text)
    args = ["--dataroot", str(mini_dataroot), "--version", "v1.0-mini", "--eval-set", "mini_val",
            "--results", str(results), "--out", str(tmp_path / "out")]  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        evaluate(args)
    assert not (tmp_path / "out" / "metrics.json").exists()
    return str(stopped.value)


def _damaged(submission: dict, how: str) -> str:
    bad = copy.deepcopy(submission)
    token = next(iter(bad["results"]))
    box = bad["results"][token][0]
    if how == "nan-box":
        box["translation"][0] = math.nan
    elif how == "unknown-class":
        box["detection_name"] = "tram"
    elif how == "all-empty":
        bad["results"] = {t: [] for t in bad["results"]}
    return json.dumps(bad)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("empty-file", "is empty"),
        ("not-json", "is not JSON"),
        ("nan-box", "translation [nan, "),
        ("unknown-class", "detection_name 'tram' is not one of"),
        ("all-empty", "all 6 samples have empty predictions"),
    ],
)
def test_bad_results_are_named_before_the_devkit(mini_dataroot, tmp_path, good_submission, how, message):
    raw = {"empty-file": "", "not-json": "{'results': "}
    text = raw[how] if how in raw else _damaged(good_submission, how)
    error = _run(mini_dataroot, tmp_path, text)
    assert message in error and "results.json" in error


def test_a_nan_box_is_refused_under_python_O_too(mini_dataroot, tmp_path, good_submission):
    results = tmp_path / "results.json"
    results.write_text(_damaged(good_submission, "nan-box"))
    command = [sys.executable, "-O", str(ROOT / "tools" / "evaluate.py"), "--dataroot", str(mini_dataroot),
               "--version", "v1.0-mini", "--eval-set", "mini_val", "--results", str(results),
               "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "is not finite" in done.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()
