"""The distillation study's report on a hand-made ledger: its means, gains and paired intervals computed by
hand (Student-t with 2 degrees of freedom: t = 4.302653)."""

import json

import pytest

from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from fd3d.studies.report import write_study_report

T_975_2 = 4.302652729749462  # scipy.stats.t.ppf(0.975, 2)


def run(seed: int, nds: float) -> dict:
    return {"seed": seed, "weights": f"runs/seed{seed}", "metrics": {key: nds for key in METRIC_KEYS}}


@pytest.fixture
def report(tmp_path):
    runs = {
        "expert": [run(0, 0.50)],
        "apprentice": [run(0, 0.30), run(1, 0.32), run(2, 0.31)],
        "fd3d@calibrated": [run(2, 0.37), run(0, 0.36), run(1, 0.37)],
        "mgd@calibrated": [run(0, 0.33)],
    }
    content = write_study_report(tmp_path, runs, {}, {"steps": 300})
    return tmp_path, content


def test_means_gains_and_paired_interval_by_hand(report):
    folder, content = report
    assert content["fd3d@calibrated"]["NDS_mean"] == pytest.approx(1.10 / 3)  # (0.36 + 0.37 + 0.37) / 3
    gain = content["gains"]["fd3d@calibrated"]
    assert gain["NDS_gain"] == pytest.approx(0.17 / 3)  # 0.36667 - 0.31
    assert gain["gap_closed"] == pytest.approx(0.17 / 3 / 0.19) and gain["beyond_seed_spread"]
    assert gain["mAP_gain"] == pytest.approx(0.17 / 3)
    paired = content["paired"]["fd3d@calibrated vs apprentice"]
    assert paired["seeds"] == [0, 1, 2] and paired["differences"] == pytest.approx([0.06, 0.05, 0.06])
    std = (2 * (0.01 / 3) ** 2 + (0.02 / 3) ** 2) ** 0.5 / 2**0.5  # deviations +1/3, -2/3, +1/3 of 0.01
    half = T_975_2 * std / 3**0.5
    assert paired["std"] == pytest.approx(std)
    assert (paired["low"], paired["high"]) == pytest.approx((0.17 / 3 - half, 0.17 / 3 + half))
    assert paired["real"]
    one = content["paired"]["mgd@calibrated vs apprentice"]
    assert one["differences"] == pytest.approx([0.03]) and one["low"] is None and not one["real"]
    assert content["paired"]["fd3d@calibrated vs mgd"]["differences"] == pytest.approx([0.03])
    assert json.loads((folder / "results.json").read_text())["gains"] == content["gains"]


def test_markdown_rows(report):
    folder, _ = report
    table = (folder / "results.md").read_text()
    assert table.startswith("# Distillation study (bevformer_cpu_bev50): 300 steps from scratch")
    assert "## calibrated weights" in table and "## paper weights" not in table
    assert "| fd3d | 3 | 0.3667 ± 0.0058 |" in table  # std of 0.36, 0.37, 0.37
    assert "|  |  | +0.0567 | 30% |" in table  # gap closed 0.0567 / 0.19
    assert "| fd3d@calibrated | +0.0567 | 30 % | +0.0567 |" in table
    # mean gain +0.02 over the apprentice's three seeds, one seed: within noise; paired on seed 0: +0.03
    assert (
        "| mgd@calibrated | +0.0200 | 11 % | +0.0200 |" in table and "+0.0200 (within noise) | 11% |" in table
    )
    interval = "| +0.0567 ± 0.0058 | [+0.0423, +0.0710] | better |"
    assert f"| fd3d vs apprentice | 3 | +0.0600, +0.0500, +0.0600 {interval}" in table
    assert "| mgd vs apprentice | 1 | +0.0300 | +0.0300 ± 0.0000 |  | one seed |" in table
    assert (folder / "results.png").stat().st_size > 1000 and not (folder / "curves.png").exists()


def test_balanced_table_borrows_only_single_loss_methods_calibrated_runs(tmp_path):
    runs = {
        "expert": [run(0, 0.50)],
        "apprentice": [run(0, 0.30), run(1, 0.32)],
        "fd3d@calibrated": [run(0, 0.34), run(1, 0.35)],
        "fd3d@balanced": [run(0, 0.38), run(1, 0.39)],
        "fitnet@calibrated": [run(0, 0.36), run(1, 0.36)],
    }
    (tmp_path / "calibration" / "balanced").mkdir(parents=True)
    scales = {"loss_stage_scales": {"smgd": {"bev": 15.5, "pv": 0.75}, "qfd": {"bev": 0.8}}}
    (tmp_path / "calibration" / "balanced" / "fd3d.json").write_text(json.dumps(scales))
    content = write_study_report(tmp_path, runs, {}, {"steps": 300})
    # gains only for the runs trained balanced; FD3D balanced against FitNet's calibrated runs, by seed
    assert set(content["gains"]) == {"fd3d@calibrated", "fitnet@calibrated", "fd3d@balanced"}
    assert content["gains"]["fd3d@balanced"]["NDS_gain"] == pytest.approx(0.075)
    assert content["paired"]["fd3d@balanced vs fitnet"]["differences"] == pytest.approx([0.02, 0.03])
    assert content["paired"]["fd3d@calibrated vs fitnet"]["differences"] == pytest.approx([-0.02, -0.01])
    # against itself under the calibrated weights, seed by seed; the borrowed runs only in their own table
    assert content["paired"]["fd3d@balanced vs fd3d@calibrated"]["differences"] == pytest.approx([0.04, 0.04])
    assert "fitnet@balanced vs apprentice" not in content["paired"]
    assert "fitnet@calibrated vs apprentice" in content["paired"]
    table = (tmp_path / "results.md").read_text()
    assert "## balanced weights" in table and "fitnet: their calibrated runs" in table
    assert "| fd3d | smgd | bev | 15.5 |" in table and "| fd3d | qfd | bev | 0.8 |" in table
    assert content["balanced_calibration"]["fd3d"] == scales
