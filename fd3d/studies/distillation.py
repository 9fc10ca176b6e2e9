"""The distillation study (`tools/distillation_study.py`): the paper's protocol on a pair built so that the
apprentice detects, every method from the same initialisation with distillation throughout, under the
paper's weights and under stage-calibrated ones, recorded in the committed ledger.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from fd3d.atomic import write_json_atomically
from fd3d.config import load_config
from fd3d.distill.loss_stage_scale import loss_stage_entries
from fd3d.engine.trainer import evaluate_only
from fd3d.evaluation.calibration import scale_overrides
from fd3d.studies.calibration import balanced_calibration, stage_calibration
from fd3d.studies.dataset import make_data
from fd3d.studies.jobs import RUN_INFO, run_job
from fd3d.studies.ledger import collect, record_finished_runs
from fd3d.studies.protocols import (
    FULL,
    ROOT,
    STUDY,
    STUDY_EXPERT,
    STUDY_HEAD_PRETRAIN,
    STUDY_METHODS,
    STUDY_PAIR,
    head_overrides,
)
from fd3d.studies.report import write_study_report
from fd3d.studies.similarity import similarities


def study_plan(steps: int, eval_period: int, calibration_steps: int) -> dict:
    """The study's recorded plan: the full paper-protocol data, its schedule with these steps, its pair and
    its expert."""
    return {**asdict(FULL), **asdict(STUDY), "steps": steps, "eval_period": eval_period,
            "pair": STUDY_PAIR, "calibration_steps": calibration_steps,
            "expert": str(STUDY_EXPERT.relative_to(ROOT))}  # fmt: skip


def expert_run(out: Path, data: list[str]) -> dict:
    """The zoo expert scored on the study's val split (OUT/expert/run_info.json, reused)."""
    folder = out / "expert"
    info_file = folder / RUN_INFO
    if info_file.is_file():
        return json.loads(info_file.read_text())
    overrides = [*data, "MODEL.WEIGHTS", str(STUDY_EXPERT), "OUTPUT_DIR", str(folder)]
    metrics = evaluate_only(load_config(STUDY_METHODS["apprentice"].config, overrides))
    info = {"seed": 0, "metrics": metrics, "weights": str(STUDY_EXPERT)}
    write_json_atomically(info_file, info)
    return info


def run_study(
    out: Path, results: Path, plan: Mapping, data: list[str], seeds: list[int], methods: list[str],
    weightings: list[str],
) -> None:  # fmt: skip
    """Make the data, score the expert, then train (or resume, or reuse) every seed x method x weighting,
    reporting after every run so that the ledger and the tables follow the study."""
    make_data(out / "data", plan, seed=1000)
    expert_run(out, data)
    schedule = ["SOLVER.MAX_ITER", str(plan["steps"]), "SOLVER.CHECKPOINT_PERIOD", str(plan["eval_period"]),
                "TEST.EVAL_PERIOD", str(plan["eval_period"])]  # fmt: skip
    cache = str(out / "expert_cache")
    distill = ["DISTILL.EXPERT.WEIGHTS", str(STUDY_EXPERT), "DISTILL.EXPERT.FEATURE_CACHE", cache]
    for seed in seeds:
        for method in methods:
            for weighting in ["paper"] if method == "apprentice" else weightings:
                name = method if method == "apprentice" else f"{method}@{weighting}"
                overrides = [*data, *schedule, "SEED", str(seed)]
                if method != "apprentice":
                    overrides += [*distill, *head_overrides(STUDY_METHODS[method], STUDY_HEAD_PRETRAIN)]
                    if weighting == "calibrated":
                        source = STUDY_METHODS[method].calibrated_as or method
                        found = stage_calibration(source, STUDY_METHODS[source], out, results,
                                                  [*data, *distill], plan)  # fmt: skip
                        overrides += scale_overrides(found["stage_scales"])
                    elif weighting == "balanced":
                        source = STUDY_METHODS[method].calibrated_as or method
                        found = balanced_calibration(source, STUDY_METHODS[source], out, results,
                                                     [*data, *distill], plan)  # fmt: skip
                        entries = loss_stage_entries(found["loss_stage_scales"])
                        overrides += ["DISTILL.LOSS_STAGE_SCALE", repr(entries)]
                run_job(name, STUDY_METHODS[method].config, out / "runs" / name / f"seed{seed}", overrides)
                report(out, results, plan)


def report(out: Path, results: Path, plan: Mapping) -> dict:
    """write_study_report over the expert and every run in the ledger, with their features' similarity."""
    record_finished_runs(out, results, plan)
    if (out / "expert" / RUN_INFO).is_file():
        write_json_atomically(results / "expert.json", json.loads((out / "expert" / RUN_INFO).read_text()))
    if not (results / "expert.json").is_file():
        raise SystemExit(f"--report: the expert is not scored yet ({results / 'expert.json'}); "
                         "run without --report first")  # fmt: skip
    runs, curves = collect(results)
    similarity = similarities(out, results, runs)
    expert = [json.loads((results / "expert.json").read_text())]
    return write_study_report(results, {"expert": expert, **runs}, curves, plan, similarity)
