"""The distillation study's committed ledger: RESULTS/runs/<run>/seed<k>.json, one entry per finished run.

The study's work folder (models, checkpoints, data) is too large to commit and may be lost; the ledger keeps
what a report needs (metrics, learning curve, the weights' sha256), so the study outlives its work folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fd3d.atomic import write_json_atomically
from fd3d.hub import WEIGHTS_NAME
from fd3d.integrity import sha256_of
from fd3d.studies.jobs import finished_run


def learning_curve(run_folder: Path, steps: int) -> list[dict]:
    """[{"step", "NDS", "mAP"}] of a run's periodic evaluations (OUTPUT_DIR/eval_<step>/) and final one."""
    curve = []
    for folder in sorted(run_folder.glob("eval_0*")):
        metrics = json.loads((folder / "metrics.json").read_text())
        curve.append(
            {"step": int(folder.name.removeprefix("eval_")), "NDS": metrics["NDS"], "mAP": metrics["mAP"]}
        )
    final = run_folder / "eval_final" / "metrics.json"
    if final.is_file():
        metrics = json.loads(final.read_text())
        curve.append({"step": steps, "NDS": metrics["NDS"], "mAP": metrics["mAP"]})
    return curve


def ledger_entry(results: Path, name: str, seed: int) -> Path:
    """The ledger file of run `name`'s seed `seed` in RESULTS."""
    return results / "runs" / name / f"seed{seed}.json"


def record_finished_runs(out: Path, results: Path, plan: Mapping) -> None:
    """Write (or refresh) the ledger entry of every finished run under OUT/runs: seed, metrics, learning
    curve, wall time and the weights' sha256."""
    for folder in sorted((out / "runs").glob("*/seed*")):
        if (done := finished_run(folder)) is None:
            continue
        target = ledger_entry(results, folder.parent.name, done["seed"])
        digest = sha256_of(Path(done["weights"]) / WEIGHTS_NAME)
        known = json.loads(target.read_text()) if target.is_file() else {}
        entry = {
            "seed": done["seed"],
            "metrics": done["metrics"],
            "curve": learning_curve(folder, plan["steps"]),
            "weights": done["weights"],
            "weights_sha256": digest,
            "seconds_last_sitting": done.get("seconds_this_sitting"),
        }
        if entry != known:
            write_json_atomically(target, entry)


def collect(results: Path) -> tuple[dict[str, list[dict]], dict[str, list[list[dict]]]]:
    """Every run in the ledger and its learning curve."""
    runs: dict[str, list[dict]] = {}
    curves: dict[str, list[list[dict]]] = {}
    for entry_file in sorted((results / "runs").glob("*/seed*.json")):
        entry = json.loads(entry_file.read_text())
        runs.setdefault(entry_file.parent.name, []).append(entry)
        curves.setdefault(entry_file.parent.name, []).append(entry["curve"])
    return runs, curves
