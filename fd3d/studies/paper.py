"""The paper protocol (`tools/reproduce.py`): the expert once, then every method trains the apprentice from
scratch for every seed (same data order, steps and cosine-to-zero schedule), then the table with the step
time of distillation and the inference speed of both models.

Runs go method by method, all seeds of one before the next, so a study cut short still has every seed of
the methods the claim rests on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from fd3d.atomic import write_json_atomically
from fd3d.config import load_config
from fd3d.engine.trainer import batches, prepare_training, training_step
from fd3d.evaluation.complexity import count_flops, inference_fps
from fd3d.hub import from_pretrained
from fd3d.studies.aggregate import gain_and_gap, summarize
from fd3d.studies.dataset import make_data
from fd3d.studies.jobs import expert_overrides, finished_run, reported_run, run_job
from fd3d.studies.protocols import EXPERT, ORDER, PAPER_METHODS
from fd3d.studies.report import write_results


def expert(out: Path, plan: dict, data: list[str], report: bool) -> dict:
    """The study's expert run (OUT/expert): trained, resumed or reused, after recording the plan and making
    the data; with `report`, only the finished one."""
    if report:
        return reported_run(out / "expert", "expert")
    write_json_atomically(out / "plan.json", plan)
    make_data(out / "data", plan, seed=1000)
    expert_schedule = ["SOLVER.MAX_ITER", str(plan["expert_steps"]),
                       "SOLVER.CHECKPOINT_PERIOD", str(max(plan["expert_steps"] // 6, 50))]  # fmt: skip
    return run_job("expert", EXPERT, out / "expert", [*data, "SEED", "0", *expert_schedule])


def paper_study(out: Path, plan: dict, data: list[str], expert_run: dict, report: bool) -> dict:
    """Run (or resume) every method of `plan` for every seed, writing OUT/partial/ after each run, then
    measure and write OUT/results.*; with `report`, only the latter from the runs finished so far."""
    distill = expert_overrides(out, expert_run)
    schedule = ["SOLVER.CHECKPOINT_PERIOD", str(max(plan["steps"] // 4, 50)), "TEST.EVAL_PERIOD", "0"]
    runs: dict[str, list[dict]] = {"expert": [expert_run]}
    for method in plan["methods"]:
        for seed in plan["seeds"]:
            folder = out / "runs" / method / f"seed{seed}"
            if report:
                if (done := finished_run(folder)) is not None:
                    runs.setdefault(method, []).append(done)
                continue
            overrides = [*data, *schedule, "SEED", str(seed), "SOLVER.MAX_ITER", str(plan["steps"])]
            if method != "apprentice":
                overrides += distill
            config = PAPER_METHODS[method].config
            runs.setdefault(method, []).append(run_job(method, config, folder, overrides))
            results = {name: summarize(group) for name, group in runs.items()}
            write_results(results, {}, {}, ORDER, out / "partial")  # table so far, after every run
    if len(runs) == 1:
        raise SystemExit(f"no finished run of {', '.join(plan['methods'])} in {out / 'runs'} to report")
    return measure_and_report(out, runs, data, distill, plan)


def seconds_per_step(config: list[Path], overrides: list[str], steps: int = 20) -> float:
    """Median wall time of a training step (after 3 warm-up steps), with the trainer's own step."""
    cfg = load_config(config, overrides)
    run = prepare_training(cfg)
    stream = batches(run, cfg)
    times = []
    for index in range(steps + 3):
        batch = next(stream)
        start = time.perf_counter()
        training_step(run, batch, cfg)
        if index >= 3:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def costs_of(folder: str) -> dict:
    """GFLOPs, millions of parameters and frames per second of the model in `folder`."""
    model = from_pretrained(folder)
    flops = count_flops(model, model.image_size)
    return {
        "gflops": flops.gflops,
        "params_m": flops.params_m,
        "fps": inference_fps(model, model.image_size, 5),
    }


def measure_and_report(
    out: Path, runs: dict[str, list[dict]], data: list[str], distill: list[str], plan: Mapping
) -> dict:
    """Measure step times and inference speed, then write results.md/json/png from the finished runs."""
    print("[measure] step times and inference speed", flush=True)
    timing = [*data, "OUTPUT_DIR", str(out / "timing"), "SOLVER.MAX_ITER", "1000"]
    apprentice_step = seconds_per_step(PAPER_METHODS["apprentice"].config, timing)
    fd3d_step = seconds_per_step(PAPER_METHODS["fd3d"].config, [*timing, *distill])
    expert_weights = runs["expert"][0]["weights"]
    apprentice_weights = next(group[0]["weights"] for name, group in runs.items() if name != "expert")
    costs = {"expert": costs_of(expert_weights), "apprentice": costs_of(apprentice_weights)}
    extra = {
        "step_time_ratio": fd3d_step / apprentice_step,
        "step_seconds": {"apprentice": apprentice_step, "fd3d_cached_expert": fd3d_step},
        "inference_speedup": costs["apprentice"]["fps"] / costs["expert"]["fps"],
        "costs": costs,
        "plan": plan,
    }
    results = {name: summarize(group) for name, group in runs.items()}
    if "apprentice" in results:
        extra["expert_minus_apprentice_NDS"] = (
            results["expert"]["NDS_mean"] - results["apprentice"]["NDS_mean"]
        )
        keys = ("NDS_gain", "gap_closed", "beyond_seed_spread")
        extra["gains"] = {
            name: dict(
                zip(keys, gain_and_gap(summary, results["apprentice"], results["expert"]), strict=True)
            )
            for name, summary in results.items()
            if name not in ("expert", "apprentice")
        }
    write_results(results, extra, costs, ORDER, out)
    print((out / "results.md").read_text())
    return {**extra, **results}
