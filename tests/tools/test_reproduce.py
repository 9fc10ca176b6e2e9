"""tools/reproduce.py end to end at toy scale: every file the issue asks for, runs reused, --report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fd3d.engine.trainer import train
from fd3d.hub import load_pretrained_config
from fd3d.studies import jobs, warm
from tools.reproduce import main

TOY = ["--quick", "--steps", "2", "--expert-steps", "2"]


@pytest.fixture(scope="module")
def study(mini_dataroot, tmp_path_factory):
    """A --quick study on the shared small dataroot (reused as OUT/data), 2 steps per run."""
    out = tmp_path_factory.mktemp("reproduce")
    os.symlink(mini_dataroot, out / "data")
    return out, main([*TOY, "--out", str(out)])


@pytest.fixture
def trained(monkeypatch):
    """The config of every run `reproduce` trains from here on, in order; the runs still train."""
    configs = []

    def recording_train(cfg, *args, **kwargs):
        configs.append(cfg)
        return train(cfg, *args, **kwargs)

    monkeypatch.setattr(jobs, "train", recording_train)
    return configs


def test_writes_the_table_json_and_plot(study):
    out, results = study
    stored = json.loads((out / "results.json").read_text())
    for name in ("expert", "apprentice", "cwd", "fd3d"):
        assert stored[name]["seeds"] == [0]
        assert len(stored[name]["NDS"]) == 1 and 0.0 <= stored[name]["NDS_mean"] <= 1.0
        assert [Path(folder, "model.safetensors").is_file() for folder in stored[name]["weights"]] == [True]
    assert stored["step_time_ratio"] > 0 and stored["inference_speedup"] > 0
    assert set(stored["gains"]) == {"cwd", "fd3d"}
    table = (out / "results.md").read_text()
    assert all(f"| {name} | 1 |" in table for name in ("expert", "apprentice", "cwd", "fd3d"))
    assert (out / "results.png").stat().st_size > 0
    assert results["fd3d"]["NDS"] == stored["fd3d"]["NDS"]


def test_rerun_reuses_finished_runs(study, capsys):
    out, first = study
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("runs/*/seed0/run_info.json")}
    assert len(stamps) == 3
    again = main([*TOY, "--out", str(out)])
    assert "[run]" not in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    assert all(again[name]["NDS"] == first[name]["NDS"] for name in ("expert", "apprentice", "cwd", "fd3d"))


def test_report_uses_only_finished_runs(study, tmp_path):
    out, first = study
    partial = tmp_path / "partial"
    (partial / "runs").mkdir(parents=True)
    for name in ("data", "expert", "runs/apprentice"):  # only the expert and the apprentice finished
        os.symlink(out / name, partial / name, target_is_directory=True)
    reported = main([*TOY, "--out", str(partial), "--report"])
    assert set(reported) >= {"expert", "apprentice"} and "fd3d" not in reported
    assert reported["apprentice"]["NDS"] == first["apprentice"]["NDS"]


def test_report_without_an_expert_names_the_folder(tmp_path):
    with pytest.raises(SystemExit, match="no finished expert"):
        main([*TOY, "--out", str(tmp_path), "--report"])


def test_warm_protocol_calibrates_runs_and_reports(study):
    """From the study's apprentice: both weightings, calibration files, tables per weighting, resumable."""
    out, _ = study
    warm = [*TOY, "--protocol", "warm", "--out", str(out), "--methods", "apprentice", "fd3d", "fitnet",
            "--head-pretrain-iters", "2", "--calibration-steps", "2"]  # fmt: skip
    results = main(warm)
    for method in ("fd3d", "fitnet"):
        calibration = json.loads((out / "warm" / "calibration" / f"{method}.json").read_text())
        assert calibration["scale"] > 0 and calibration["detection_grad_norm"] > 0
        for key, paper in calibration["paper_weights"].items():
            assert calibration["matched_weights"][key] == pytest.approx(paper * calibration["scale"])
        for weighting in ("paper", "matched"):
            assert results[f"{method}@{weighting}"]["seeds"] == [0]
            assert f"{method}@{weighting}" in results["gains"]
    fd3d = json.loads((out / "warm" / "calibration" / "fd3d.json").read_text())
    assert set(fd3d["paper_weights"]) == {"DISTILL.SMGD.WEIGHT", "DISTILL.QFD.WEIGHT"}
    table = (out / "warm" / "results.md").read_text()
    assert "## paper weights" in table and "## matched weights" in table
    assert "### Paired by seed (matched weights)" in table
    paired = results["paired"]["fd3d@matched vs apprentice"]
    nds = results["fd3d@matched"]["NDS"][0] - results["apprentice"]["NDS"][0]
    assert paired["differences"] == [pytest.approx(nds)] and paired["low"] is None
    assert f"| fd3d vs apprentice | 1 | {nds:+.4f} |" in table
    assert (out / "warm" / "results.png").stat().st_size > 1000
    again = main([*warm, "--report"])
    assert again["fd3d@matched"]["NDS"] == results["fd3d@matched"]["NDS"]


def test_warm_protocol_with_a_ray_corrupted_expert_runs_apart(study, trained):
    out, _ = study
    clean = main([*TOY, "--protocol", "warm", "--out", str(out), "--methods", "apprentice", "cwd",
                  "--weightings", "paper"])  # fmt: skip
    trained.clear()
    results = main([*TOY, "--protocol", "warm", "--out", str(out), "--methods", "apprentice", "cwd",
                    "--weightings", "paper", "--ray-artifacts", "0.5"])  # fmt: skip
    strengths = {
        Path(cfg.OUTPUT_DIR).parent.name: cfg.DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH for cfg in trained
    }
    assert strengths.pop("cwd@paper") == 0.5
    # the apprentice alone never reads the expert: its runs are the clean study's, never trained apart
    assert all(s == 0.0 for s in strengths.values()) and set(strengths) <= {"apprentice"}
    assert results["apprentice"]["weights"] == [str(out / "warm" / "runs" / "apprentice" / "seed0" / "model")]
    assert not (out / "warm_rays0.5" / "runs" / "apprentice").exists()
    distilled = [cfg for cfg in trained if Path(cfg.OUTPUT_DIR).parent.name != "apprentice"]
    assert all(Path(cfg.OUTPUT_DIR).is_relative_to(out / "warm_rays0.5") for cfg in distilled)
    assert results["cwd@paper"]["seeds"] == [0] and (out / "warm_rays0.5" / "results.md").is_file()
    assert results["paired"]["cwd@paper vs apprentice"]["seeds"] == [0]
    # what CWD loses to the artefacts: the same seed against the clean expert
    loss = results["against_clean"]["cwd@paper"]
    assert loss["differences"] == [
        pytest.approx(results["cwd@paper"]["NDS"][0] - clean["cwd@paper"]["NDS"][0])
    ]
    assert (
        "| cwd@paper (rays) vs cwd@paper (clean) | 1 |" in (out / "warm_rays0.5" / "results.md").read_text()
    )


def test_warm_protocol_at_a_narrower_range_fine_tunes_its_own_expert_and_start(study, trained, monkeypatch):
    out, _ = study
    monkeypatch.setattr(warm, "RANGE_VARIANT", {"expert_steps": 2, "apprentice_steps": 3})
    study_args = [*TOY, "--protocol", "warm", "--out", str(out), "--methods", "apprentice", "cwd",
                  "--weightings", "paper", "--bev-range", "25.6"]  # fmt: skip
    results = main(study_args)
    variant = out / "range25.6"
    jobs = {str(Path(cfg.OUTPUT_DIR).relative_to(variant)): cfg for cfg in trained}
    assert set(jobs) == {"expert", "runs/apprentice/seed0", "warm/runs/apprentice/seed0",
                         "warm/runs/cwd@paper/seed0"}  # fmt: skip
    narrow = [-25.6, -25.6, -5.0, 25.6, 25.6, 3.0]
    assert all(list(cfg.MODEL.POINT_CLOUD_RANGE) == pytest.approx(narrow) for cfg in trained)
    # fine-tuned from the main study's expert and apprentice, each for its own number of steps
    expert = jobs["expert"]
    assert expert.MODEL.WEIGHTS == str(out / "expert" / "model") and expert.SOLVER.MAX_ITER == 2
    start = jobs["runs/apprentice/seed0"]
    assert start.MODEL.WEIGHTS == str(out / "runs" / "apprentice" / "seed0" / "model")
    assert start.SOLVER.MAX_ITER == 3
    cwd = jobs["warm/runs/cwd@paper/seed0"]
    assert cwd.MODEL.WEIGHTS == str(variant / "runs" / "apprentice" / "seed0" / "model")
    assert cwd.DISTILL.EXPERT.WEIGHTS == str(variant / "expert" / "model")
    assert cwd.DISTILL.EXPERT.FEATURE_CACHE == str(variant / "expert_cache")
    saved, _ = load_pretrained_config(str(variant / "expert" / "model"))
    assert list(saved.MODEL.POINT_CLOUD_RANGE) == pytest.approx(narrow)
    assert results["cwd@paper"]["seeds"] == [0] and (variant / "warm" / "results.md").is_file()
    trained.clear()
    again = main([*study_args, "--report"])
    assert trained == [] and again["cwd@paper"]["NDS"] == results["cwd@paper"]["NDS"]


def test_narrower_range_must_be_positive_and_warm(study, capsys):
    out, _ = study
    with pytest.raises(SystemExit, match="positive half-width"):
        main([*TOY, "--protocol", "warm", "--out", str(out), "--bev-range", "-3"])
    with pytest.raises(SystemExit):
        main([*TOY, "--out", str(out), "--bev-range", "25.6"])
    assert "variants of --protocol warm" in capsys.readouterr().err


def test_warm_protocol_rejects_unknown_methods(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--protocol", "warm", "--methods", "fd3d_head_pretrained", "--out", str(tmp_path)])
    assert "not methods of the warm protocol" in capsys.readouterr().err
