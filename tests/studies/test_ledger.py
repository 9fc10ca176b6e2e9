"""The ledger keeps each finished run's metrics, learning curve and weights' digest, and only what changed
is written again."""

import hashlib
import json

from fd3d.studies.jobs import RUN_INFO
from fd3d.studies.ledger import collect, learning_curve, ledger_entry, record_finished_runs


def finished(out, name: str, seed: int, nds: float, evaluations: dict[int, float]):
    """OUT/runs/<name>/seed<k> as the study leaves it: periodic evaluations, the final one, model, info."""
    folder = out / "runs" / name / f"seed{seed}"
    for step, value in evaluations.items():
        (folder / f"eval_{step:07d}").mkdir(parents=True)
        (folder / f"eval_{step:07d}" / "metrics.json").write_text(
            json.dumps({"NDS": value, "mAP": value / 2})
        )
    (folder / "eval_final").mkdir(parents=True)
    (folder / "eval_final" / "metrics.json").write_text(json.dumps({"NDS": nds, "mAP": nds / 2}))
    (folder / "model").mkdir()
    (folder / "model" / "model.safetensors").write_bytes(f"{name}{seed}".encode())
    info = {"seed": seed, "metrics": {"NDS": nds}, "weights": str(folder / "model"),
            "seconds_this_sitting": 12.5}  # fmt: skip
    (folder / RUN_INFO).write_text(json.dumps(info))
    return folder


def test_learning_curve_is_the_periodic_then_the_final_evaluation(tmp_path):
    folder = finished(tmp_path, "fd3d@calibrated", 0, 0.4, {100: 0.1, 200: 0.3})
    assert learning_curve(folder, 300) == [
        {"step": 100, "NDS": 0.1, "mAP": 0.05},
        {"step": 200, "NDS": 0.3, "mAP": 0.15},
        {"step": 300, "NDS": 0.4, "mAP": 0.2},
    ]


def test_record_and_collect(tmp_path):
    out, results = tmp_path / "out", tmp_path / "results"
    finished(out, "apprentice", 1, 0.3, {100: 0.2})
    finished(out, "apprentice", 0, 0.25, {})
    (out / "runs" / "fd3d@calibrated" / "seed0").mkdir(parents=True)  # not finished: not recorded
    record_finished_runs(out, results, {"steps": 200})
    entry = json.loads(ledger_entry(results, "apprentice", 1).read_text())
    assert entry == {
        "seed": 1,
        "metrics": {"NDS": 0.3},
        "curve": [{"step": 100, "NDS": 0.2, "mAP": 0.1}, {"step": 200, "NDS": 0.3, "mAP": 0.15}],
        "weights": str(out / "runs" / "apprentice" / "seed1" / "model"),
        "weights_sha256": hashlib.sha256(b"apprentice1").hexdigest(),
        "seconds_last_sitting": 12.5,
    }
    runs, curves = collect(results)
    assert list(runs) == ["apprentice"] and [run["seed"] for run in runs["apprentice"]] == [0, 1]
    assert curves == {"apprentice": [[{"step": 200, "NDS": 0.25, "mAP": 0.125}], entry["curve"]]}
    stamp = ledger_entry(results, "apprentice", 1).stat().st_mtime_ns
    record_finished_runs(out, results, {"steps": 200})  # nothing changed: nothing written
    assert ledger_entry(results, "apprentice", 1).stat().st_mtime_ns == stamp
