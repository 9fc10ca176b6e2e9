"""The warm protocol (`tools/reproduce.py --protocol warm`): every method starts from one apprentice trained
alone (the paper protocol's apprentice of seed 0, a stand-in for the paper's pretrained apprentices) and
trains more steps, under the paper's loss weights and under weights matched to the detection gradient.

Its variants: an expert with ray artefacts put in on purpose (OUT/warm_rays<STRENGTH>/), and both BEV
grids over a narrower range, where masks act (OUT/range<HALF_WIDTH>/). Runs go seed by seed, so calls with
other seeds are chunks of one study.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fd3d.config import load_config
from fd3d.studies.calibration import matched_calibration, matched_overrides
from fd3d.studies.jobs import finished_run, finished_seeds, reported_run, run_job
from fd3d.studies.protocols import APPRENTICE, EXPERT, WARM, WARM_HEAD_TO_HEAD, WARM_METHODS, head_overrides
from fd3d.studies.report import write_warm_results

# --bev-range: the expert and the warm-start apprentice fine-tuned from the main study's at the narrower range
RANGE_VARIANT = {"expert_steps": 1500, "apprentice_steps": 1000}


@dataclass(frozen=True)
class WarmOptions:
    """What one call of the warm protocol runs: methods (None: the head-to-head ones), weightings, steps
    (None: the protocol's), head pre-training and calibration steps, the ray-artefact strength (0: the
    expert as it is), and whether it only reports."""

    methods: list[str] | None
    weightings: list[str]
    steps: int | None
    head_pretrain_iters: int
    calibration_steps: int
    ray_artifacts: float
    report: bool


def narrow_range(half_width: float) -> list[float]:
    """The expert config's MODEL.POINT_CLOUD_RANGE with x and y cut to ±half_width metres (z kept)."""
    if half_width <= 0:
        raise SystemExit(f"--bev-range must be a positive half-width in metres, got {half_width}")
    full = load_config(EXPERT, []).MODEL.POINT_CLOUD_RANGE
    return [-half_width, -half_width, full[2], half_width, half_width, full[5]]


def range_variant(
    out: Path, data: list[str], expert_run: dict, half_width: float, report: bool
) -> tuple[Path, list[str], dict]:
    """The variant where masks act (`--bev-range`): the same BEV grids over ±half_width m, so a cell is
    smaller and an object covers more of them (at ±51.2 m an object is about 1.2 cells of the apprentice's
    25 x 25 BEV). The expert and the warm-start apprentice are fine-tuned from the main study's at that
    range; boxes outside it are dropped from training (the loader's range filter) and the devkit still scores
    every val object, so all models of the variant miss the far ones alike.

    Returns (the variant's folder OUT/range<half_width>, every job's data overrides, its expert run)."""
    variant = out / f"range{half_width:g}"
    data = [*data, "MODEL.POINT_CLOUD_RANGE", str(narrow_range(half_width))]
    start = finished_run(out / "runs" / "apprentice" / "seed0")
    if start is None:
        raise SystemExit(f"--bev-range fine-tunes {out / 'runs/apprentice/seed0'}, which is not finished")
    jobs = {  # name: (config, folder, weights to start from, steps)
        "expert": (EXPERT, variant / "expert", expert_run["weights"], RANGE_VARIANT["expert_steps"]),
        "apprentice": (APPRENTICE, variant / "runs" / "apprentice" / "seed0", start["weights"],
                       RANGE_VARIANT["apprentice_steps"]),
    }  # fmt: skip
    finished = {}
    for name, (config, folder, weights, steps) in jobs.items():
        if report:
            finished[name] = reported_run(folder, name)
            continue
        schedule = ["SOLVER.MAX_ITER", str(steps), "SOLVER.CHECKPOINT_PERIOD", str(max(steps // 3, 50))]
        overrides = [*data, "MODEL.WEIGHTS", weights, "SEED", "0", "TEST.EVAL_PERIOD", "0", *schedule]
        finished[name] = run_job(f"{name} at ±{half_width:g} m", config, folder, overrides)
    return variant, data, finished["expert"]


def warm_study(
    out: Path, data: list[str], distill: list[str], expert_run: dict, seeds: list[int], options: WarmOptions
) -> dict:
    """Run (or resume, or report) the warm-start protocol; returns its results."""
    start = finished_run(out / "runs" / "apprentice" / "seed0")
    if start is None:
        raise SystemExit(
            f"--protocol warm starts from the paper protocol's apprentice of seed 0, not finished in "
            f"{out / 'runs' / 'apprentice' / 'seed0'}: run `--methods apprentice --seeds 0` first"
        )
    warm = out / (f"warm_rays{options.ray_artifacts:g}" if options.ray_artifacts else "warm")
    if options.ray_artifacts:
        distill = [*distill, "DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH", str(options.ray_artifacts)]
    steps = options.steps or WARM.steps
    methods = [m for m in WARM_METHODS if m in (options.methods or WARM_HEAD_TO_HEAD)]
    base = [*data, "MODEL.WEIGHTS", start["weights"], "SOLVER.BASE_LR", str(WARM.base_lr),
            "SOLVER.WARMUP_ITERS", str(WARM.warmup), "TEST.EVAL_PERIOD", "0"]  # fmt: skip

    def overrides_of(name: str) -> list[str]:
        method = WARM_METHODS[name]
        head = head_overrides(method, options.head_pretrain_iters)
        return [*base, *method.overrides, *head, *(distill if name != "apprentice" else [])]

    runs: dict[str, list[dict]] = {"expert": [expert_run]}
    for seed in seeds:
        for method in methods:
            for weighting in ["paper"] if method == "apprentice" else options.weightings:
                name = method if method == "apprentice" else f"{method}@{weighting}"
                # the apprentice alone never reads the expert: the ray-artefact study shares its runs
                folder = (out / "warm" if method == "apprentice" else warm) / "runs" / name / f"seed{seed}"
                if options.report:
                    if (done := finished_run(folder)) is not None:
                        runs.setdefault(name, []).append(done)
                    continue
                overrides = [*overrides_of(method), "SEED", str(seed), "SOLVER.MAX_ITER", str(steps),
                             "SOLVER.CHECKPOINT_PERIOD", str(max(steps // 2, 50))]  # fmt: skip
                if weighting == "matched":
                    found = matched_calibration(method, WARM_METHODS[method], warm / "calibration",
                                                overrides_of(method), options.calibration_steps)  # fmt: skip
                    overrides += matched_overrides(found)
                config = WARM_METHODS[method].config
                runs.setdefault(name, []).append(run_job(name, config, folder, overrides))
                write_warm_results(warm, runs, steps)
    clean = None
    # the same runs against the expert as it is, where finished: what each one loses
    if options.ray_artifacts:
        names = [name for name in runs if name not in ("expert", "apprentice")]
        found = {name: finished_seeds(out / "warm" / "runs" / name, seeds) for name in names}
        clean = {name: group for name, group in found.items() if group}
    return write_warm_results(warm, runs, steps, clean)
