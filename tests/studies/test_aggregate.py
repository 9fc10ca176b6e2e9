"""Aggregation of a reproduction study: seed statistics, gains, gap closed, report files."""

from __future__ import annotations

import json
import statistics

import pytest
from matplotlib.collections import LineCollection, PathCollection

from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from fd3d.studies.aggregate import gain_and_gap, paired_comparisons, paired_difference, summarize
from fd3d.studies.figures import paired_figure, save_figure
from fd3d.studies.report import paired_table, write_results


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


def test_paired_difference_by_hand():
    # seeds 0-2 in both, seed 3 only in the method: it is left out of the pairing
    method = summarize([run(0, 0.21), run(1, 0.23), run(2, 0.20), run(3, 0.50)])
    baseline = summarize([run(2, 0.19), run(0, 0.20), run(1, 0.20)])
    paired = paired_difference(method, baseline)
    assert paired["seeds"] == [0, 1, 2]
    assert paired["differences"] == pytest.approx([0.01, 0.03, 0.01])
    mean, std = 0.05 / 3, statistics.stdev([0.01, 0.03, 0.01])
    assert paired["mean"] == pytest.approx(mean) and paired["std"] == pytest.approx(std)
    # Student t, 2 degrees of freedom, 97.5 % quantile = 4.302652729911275 (tables)
    half = 4.302652729911275 * std / 3**0.5
    assert paired["low"] == pytest.approx(mean - half) and paired["high"] == pytest.approx(mean + half)
    assert paired["low"] < 0 < paired["high"] and not paired["real"]
    # a steady gain: the interval excludes zero although the unpaired spread is ten times the gain
    steady = paired_difference(
        summarize([run(0, 0.101), run(1, 0.302), run(2, 0.2015)]),
        summarize([run(0, 0.100), run(1, 0.300), run(2, 0.2000)]),
    )
    assert steady["real"] and steady["low"] > 0
    assert not gain_and_gap(
        summarize([run(0, 0.101), run(1, 0.302), run(2, 0.2015)]),
        summarize([run(0, 0.100), run(1, 0.300), run(2, 0.2000)]),
        summarize([run(0, 0.5)]),
    )[2]


def test_paired_difference_of_one_or_no_common_seed():
    one = paired_difference(summarize([run(0, 0.3), run(5, 0.1)]), summarize([run(0, 0.2)]))
    assert one["differences"] == pytest.approx([0.1]) and one["low"] is None and not one["real"]
    assert paired_difference(summarize([run(1, 0.3)]), summarize([run(0, 0.2)])) is None


def test_paired_table_rows():
    results = {
        "apprentice": summarize([run(0, 0.20), run(1, 0.21)]),
        "fd3d": summarize([run(0, 0.22), run(1, 0.25)]),
        "mgd": summarize([run(0, 0.19)]),
    }
    rows = [("fd3d", "apprentice"), ("mgd", "apprentice"), ("cwd", "apprentice")]
    found = paired_comparisons(results, rows)
    assert list(found) == [("fd3d", "apprentice"), ("mgd", "apprentice")]
    assert found[("fd3d", "apprentice")] == paired_difference(results["fd3d"], results["apprentice"])
    lines = paired_table(found).strip().splitlines()
    assert len(lines) == 4  # header, rule, fd3d, mgd (cwd has no runs)
    assert lines[2].startswith("| fd3d vs apprentice | 2 | +0.0200, +0.0400 | +0.0300 ± 0.0141 |")
    assert lines[2].endswith("| within noise |")  # t(0.975, 1) = 12.7: [-0.097, +0.157]
    assert lines[3] == "| mgd vs apprentice | 1 | -0.0100 | -0.0100 ± 0.0000 |  | one seed |"


def test_paired_figure_draws_each_comparison_where_its_numbers_are(tmp_path):
    results = {
        "apprentice": summarize([run(0, 0.20), run(1, 0.21), run(2, 0.19)]),
        "fd3d": summarize([run(0, 0.23), run(1, 0.24), run(2, 0.22)]),
        "cwd": summarize([run(0, 0.22), run(1, 0.20), run(2, 0.19)]),
        "mgd": summarize([run(0, 0.18)]),
    }
    rows = [("fd3d", "apprentice"), ("cwd", "apprentice"), ("mgd", "apprentice")]
    found = paired_comparisons(results, rows)
    figure = paired_figure({"paper weights": found, "other": {rows[0]: found[rows[0]]}})
    paper, other = figure.axes
    assert paper.get_title() == "paper weights" and other.get_title() == "other"
    assert [label.get_text() for label in paper.get_yticklabels()] == [f"{a} vs {b}" for a, b in rows]
    dots = [c.get_offsets().tolist() for c in paper.collections if isinstance(c, PathCollection)]
    intervals = [c.get_segments() for c in paper.collections if isinstance(c, LineCollection)]
    # row r is drawn at y = -r: each seed's difference a dot, the 95 % interval a bar (none for one seed)
    assert dots == [
        [[pytest.approx(d), -row] for d in paired["differences"]] for row, paired in enumerate(found.values())
    ]
    fd3d, cwd = found[rows[0]], found[rows[1]]
    assert [[segment.tolist() for segment in bars] for bars in intervals] == [
        [[[pytest.approx(fd3d["low"]), 0.0], [pytest.approx(fd3d["high"]), 0.0]]],
        [[[pytest.approx(cwd["low"]), -1.0], [pytest.approx(cwd["high"]), -1.0]]],
    ]
    means = [line.get_xydata().tolist() for line in paper.get_lines() if line.get_marker() == "D"]
    assert means == [[[pytest.approx(f["mean"]), -row]] for row, f in enumerate(found.values())]
    assert save_figure(figure, tmp_path / "paired.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="at least one panel"):
        paired_figure({})
