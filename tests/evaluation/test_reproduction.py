"""Aggregation of a reproduction study: seed statistics, gains, gap closed, report files."""

from __future__ import annotations

import json
import statistics

import pytest

from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from fd3d.evaluation.reproduction import gain_and_gap, summarize, write_results


def run(seed: int, nds: float) -> dict:
    return {"seed": seed, "weights": f"runs/seed{seed}", "metrics": {key: nds for key in METRIC_KEYS}}


def test_summary_gain_and_gap_by_hand():
    expert = summarize([run(0, 0.50)])
    apprentice = summarize([run(1, 0.30), run(0, 0.32), run(2, 0.31)])
    fd3d = summarize([run(0, 0.42), run(1, 0.40), run(2, 0.41)])
    noisy = summarize([run(0, 0.36), run(1, 0.26), run(2, 0.31)])
    assert apprentice["seeds"] == [0, 1, 2] and apprentice["NDS"] == [0.32, 0.30, 0.31]
    assert apprentice["NDS_mean"] == pytest.approx(0.31)
    assert apprentice["NDS_std"] == pytest.approx(statistics.stdev([0.32, 0.30, 0.31]))
    gain, gap, real = gain_and_gap(fd3d, apprentice, expert)
    assert gain == pytest.approx(0.10) and gap == pytest.approx(0.10 / 0.19) and real
    gain, _, real = gain_and_gap(noisy, apprentice, expert)
    assert gain == pytest.approx(0.0, abs=1e-12) and not real  # std 0.05 swamps it
    assert gain_and_gap(fd3d, apprentice, summarize([run(0, 0.2)]))[1] is None  # expert not better
    gain, _, real = gain_and_gap(apprentice, fd3d, expert)
    assert gain == pytest.approx(-0.10) and real  # a loss beyond the spread is real too


def test_report_files(tmp_path):
    results = {
        "expert": summarize([run(0, 0.5)]),
        "apprentice": summarize([run(0, 0.30), run(1, 0.32)]),
        "fd3d": summarize([run(0, 0.40), run(1, 0.42)]),
        "cwd": summarize([run(0, 0.30), run(1, 0.33)]),
    }
    costs = {"expert": {"gflops": 6.2, "fps": 6.0}, "apprentice": {"gflops": 0.95, "fps": 29.0}}
    write_results(results, {"step_time_ratio": 1.3}, costs, ["expert", "apprentice", "cwd", "fd3d"], tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["step_time_ratio"] == 1.3 and saved["fd3d"]["NDS"] == [0.40, 0.42]
    table = (tmp_path / "results.md").read_text()
    assert "| fd3d | 2 | 0.4100 ± 0.0141" in table and "+0.1000 |" in table and "53%" in table
    assert "+0.0050 (within noise)" in table
    assert (tmp_path / "results.png").stat().st_size > 1000
