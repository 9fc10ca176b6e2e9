#!/usr/bin/env python
"""Does FD3D beat the baselines? The paper's Tables 2-3 on synthetic nuScenes-format data, on a CPU.

    python tools/reproduce.py --quick --out work/reproduce_quick        # about 10 minutes on 2 cores
    python tools/reproduce.py --seeds 0 1 2 --out work/reproduce        # hours; resumable

1. generates a v1.0-trainval-format dataset with distinct scene layouts (official names; scored on the
   devkit's `val` split), or a v1.0-mini one with --quick;
2. trains the CPU-scale BEVFormer expert once and keeps it as a Hub-format folder in OUT/expert/model;
3. for every seed trains the apprentice alone and with each method (same data order, steps and
   cosine-to-zero schedule), distilling from cached expert features;
4. scores every model with the official evaluator and writes OUT/results.md, OUT/results.json and
   OUT/results.png (NDS mean ± std over seeds, gain over the apprentice, share of the gap closed);
5. measures the step time of distillation against apprentice-only training, and inference speed.

Every finished run (OUT/runs/<method>/seed<k>) keeps its model and metrics; a re-run only does what is
missing, and an interrupted run continues from its last checkpoint. Runs go method by method (apprentice,
FD3D, CWD first), all seeds of one before the next; `--report` trains nothing and writes the table from
the runs finished so far.

`--protocol warm` is the second protocol (a study that can tell the methods apart): every method starts
from one apprentice trained alone (the paper protocol's apprentice of seed 0, a stand-in for the paper's
pretrained apprentices) and trains --steps more steps, under the paper's loss weights and under weights
matched so that each method's gradient at the apprentice's features is the same fraction of the detection
loss's (calibrated once per method with `fd3d.engine.diagnose`, stored in OUT/warm/calibration/). It
includes the paper's mechanism ablations (CWD on PV only / BEV only, Table 4c; global / focal / GT masks,
Table 4a; QFD alone with the static and the layered head) and QFD's open choices (a 1x1 adapter on the
apprentice's own map, per-channel min-max). `--ray-artifacts STRENGTH` runs it against an expert whose
BEV has ray artefacts put in on purpose (OUT/warm_rays<STRENGTH>/). `--bev-range HALF_WIDTH` is the
variant where masks act: both BEV grids over ±HALF_WIDTH m instead of ±51.2 m, with the expert and the
warm-start apprentice fine-tuned at that range (OUT/range<HALF_WIDTH>/). Runs go seed by seed,
so `--seeds 0 1` then `--seeds 2 3 4` are chunks of one study; results in OUT/warm/results.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.config import distill_config, load_config
from fd3d.data.synthetic import SyntheticConfig, generate
from fd3d.engine.diagnose import train_and_measure
from fd3d.engine.trainer import MODEL_DIR, batches, prepare_training, train, training_step
from fd3d.evaluation.complexity import count_flops, inference_fps
from fd3d.evaluation.reproduction import (
    gain_and_gap,
    gains_over_apprentice,
    markdown_table,
    paired_comparisons,
    paired_figure,
    paired_table,
    save_figure,
    summarize,
    weighting_rows,
    write_results,
)
from fd3d.hub import WEIGHTS_NAME, from_pretrained

ROOT = Path(__file__).resolve().parents[1]
DETECTOR_CONFIGS = ROOT / "projects" / "BEVFormer" / "configs"
PAIR = "bevformer_cpu"  # configs/distill/pairs/<PAIR>.yaml: the CPU-scale BEVFormer expert and apprentice
# Every job's config files, overlays merged in order: a detector config, or a pair plus a method.
EXPERT = [DETECTOR_CONFIGS / "cpu_expert.yaml"]
APPRENTICE = [DETECTOR_CONFIGS / "cpu_apprentice.yaml"]
# Run order: the methods the paper's claim rests on first, so a study cut short still has every seed of them.
METHODS = {
    "apprentice": APPRENTICE,
    "fd3d": distill_config(PAIR, "fd3d"),
    "cwd": distill_config(PAIR, "cwd"),
    "fitnet": distill_config(PAIR, "fitnet"),
    "mgd": distill_config(PAIR, "mgd"),
    "smgd_only": distill_config(PAIR, "smgd_only"),
    "qfd_only": distill_config(PAIR, "qfd_only"),
    # not a method of the paper: FD3D with its distillation head pre-trained on the expert first
    "fd3d_head_pretrained": distill_config(PAIR, "fd3d_head_pretrained"),
}
QUICK_METHODS = ("apprentice", "cwd", "fd3d")
RUN_INFO = "run_info.json"  # written last: a run with it and its model is finished
ORDER = (  # table rows: the paper's order, then the variant
    "expert",
    "apprentice",
    "fitnet",
    "cwd",
    "mgd",
    "fd3d",
    "smgd_only",
    "qfd_only",
    "fd3d_head_pretrained",
)
# (data, expert steps, steps of every apprentice run)
FULL = {"version": "v1.0-trainval", "scenes": 60, "val_scenes": 10, "samples": 20}
FULL.update(expert_steps=6000, steps=2000)
QUICK = {"version": "v1.0-mini", "scenes": 10, "val_scenes": None, "samples": 10}
QUICK.update(expert_steps=600, steps=400)

# The warm-start protocol: (config, overrides) per method. The distillation head depends only on the expert,
# so methods that need it pre-train it first: on a short warm schedule a jointly trained head would find
# no focal query for most of the run.
STATIC_HEAD = ["DISTILL.HEAD.NUM_LAYERS", "1", "DISTILL.HEAD.BOX_REFERENCE", "False"]
WARM_METHODS = {
    "apprentice": (APPRENTICE, []),  # the same steps without an expert
    "fd3d": (distill_config(PAIR, "fd3d"), []),
    "fitnet": (distill_config(PAIR, "fitnet"), []),
    "cwd": (distill_config(PAIR, "cwd"), []),
    "mgd": (distill_config(PAIR, "mgd"), []),  # Table 4a: global random mask
    "smgd_focal": (distill_config(PAIR, "smgd_only"), []),  # Table 4a: focal mask
    "smgd_gt": (distill_config(PAIR, "mask_on_gt"), []),  # Table 4a: mask on GT
    "cwd_pv": (distill_config(PAIR, "cwd_pv"), []),  # Table 4c
    "cwd_bev": (distill_config(PAIR, "cwd_bev"), []),  # Table 4c
    "qfd_only": (distill_config(PAIR, "qfd_only"), []),
    "qfd_only_static": (distill_config(PAIR, "qfd_only"), STATIC_HEAD),
    # QFD's two open choices (Sec. 3.3): the apprentice's own map through a 1x1 adapter, per-channel min-max
    "qfd_only_linear": (distill_config(PAIR, "qfd_only"), ["DISTILL.QFD.ADAPTER", "linear"]),
    "qfd_only_channel": (distill_config(PAIR, "qfd_only"), ["DISTILL.QFD.NORMALIZE", "channel"]),
}
# pre-train the head first
HEAD_METHODS = ("fd3d", "smgd_focal", "qfd_only", "qfd_only_static", "qfd_only_linear", "qfd_only_channel")
WARM_HEAD_TO_HEAD = ("apprentice", "fd3d", "fitnet", "cwd", "mgd")
WEIGHTINGS = ("paper", "matched")
# besides every method vs the apprentice: FD3D vs each baseline and the ablations' own contrasts
PAIRED_COMPARISONS = [
    ("fd3d", "fitnet"),
    ("fd3d", "cwd"),
    ("fd3d", "mgd"),
    ("cwd_bev", "cwd_pv"),
    ("smgd_focal", "mgd"),
    ("smgd_focal", "smgd_gt"),
    ("qfd_only", "qfd_only_static"),
    ("qfd_only_linear", "qfd_only"),
    ("qfd_only_channel", "qfd_only"),
]
# matched weighting: every method's gradient norm at the apprentice's features = this x the detection loss's
MATCHED_FRACTION = 0.5
WARM = {"steps": 1000, "base_lr": 1e-4, "warmup": 50, "head_pretrain": 2000, "calibration_steps": 20}
# --bev-range: the expert and the warm-start apprentice fine-tuned from the main study's at the narrower range
RANGE_VARIANT = {"expert_steps": 1500, "apprentice_steps": 1000}


def loss_weights(cfg) -> dict[str, float]:
    """{config key: value} of the loss weights of the configured distillation terms."""
    return {
        f"DISTILL.{loss.upper()}.WEIGHT": float(cfg.DISTILL[loss.upper()].WEIGHT)
        for loss in cfg.DISTILL.LOSSES
    }


def gradient_share(norms: dict) -> tuple[float, float]:
    """(distillation, detection) gradient norms at the apprentice's PV and BEV features together."""

    def total(terms: list[str]) -> float:
        return sum(norms[t][stage] ** 2 for t in terms for stage in norms[t]) ** 0.5

    return total([t for t in norms if t != "detection"]), total(["detection"])


def calibrate(method: str, out: Path, overrides: list[str], steps: int) -> dict:
    """Gradient norms of a method's terms at the warm-start apprentice, and the weight scale that matches
    them to MATCHED_FRACTION of the detection loss's (one scale for all of a method's terms, keeping the
    paper's ratio between them). Stored in OUT/warm/calibration/<method>.json and reused."""
    target = out / f"{method}.json"
    if target.is_file():
        return json.loads(target.read_text())
    config, extra = WARM_METHODS[method]
    scratch = out / "scratch" / method
    cfg = load_config(config, [*overrides, *extra, "OUTPUT_DIR", str(scratch)])
    print(f"[calibrate] {method}: {steps} steps from the warm start", flush=True)
    norms, _ = train_and_measure(prepare_training(cfg), cfg, steps, 2)
    distillation, detection = gradient_share(norms)
    scale = MATCHED_FRACTION * detection / distillation
    paper = loss_weights(cfg)
    result = {
        "grad_norms": norms,
        "distillation_grad_norm": distillation,
        "detection_grad_norm": detection,
        "scale": scale,
        "paper_weights": paper,
        "matched_weights": {key: value * scale for key, value in paper.items()},
        "matched_fraction": MATCHED_FRACTION,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(target, result)
    return result


def expert_overrides(out: Path, expert_run: dict) -> list[str]:
    """What every distillation job of a study adds: the expert's weights and its feature cache in OUT."""
    cache = str(out / "expert_cache")
    return ["DISTILL.EXPERT.WEIGHTS", expert_run["weights"], "DISTILL.EXPERT.FEATURE_CACHE", cache]


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
    out: Path, data: list[str], distill: list[str], expert_run: dict, seeds: list[int], args
) -> dict:
    """Run (or resume, or report) the warm-start protocol; returns its results."""
    start = finished_run(out / "runs" / "apprentice" / "seed0")
    if start is None:
        raise SystemExit(
            f"--protocol warm starts from the paper protocol's apprentice of seed 0, not finished in "
            f"{out / 'runs' / 'apprentice' / 'seed0'}: run `--methods apprentice --seeds 0` first"
        )
    warm = out / (f"warm_rays{args.ray_artifacts:g}" if args.ray_artifacts else "warm")
    if args.ray_artifacts:
        distill = [*distill, "DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH", str(args.ray_artifacts)]
    steps = args.steps or WARM["steps"]
    methods = [m for m in WARM_METHODS if m in (args.methods or WARM_HEAD_TO_HEAD)]
    base = [*data, "MODEL.WEIGHTS", start["weights"], "SOLVER.BASE_LR", str(WARM["base_lr"]),
            "SOLVER.WARMUP_ITERS", str(WARM["warmup"]), "TEST.EVAL_PERIOD", "0"]  # fmt: skip

    def overrides_of(method: str) -> list[str]:
        config_extra = WARM_METHODS[method][1]
        head = (
            ["DISTILL.HEAD.PRETRAIN_ITERS", str(args.head_pretrain_iters)] if method in HEAD_METHODS else []
        )
        return [*base, *config_extra, *head, *(distill if method != "apprentice" else [])]

    def matched_weights(method: str) -> list[str]:
        found = calibrate(method, warm / "calibration", overrides_of(method), args.calibration_steps)
        return [item for key, value in found["matched_weights"].items() for item in (key, repr(value))]

    runs: dict[str, list[dict]] = {"expert": [expert_run]}
    for seed in seeds:
        for method in methods:
            for weighting in ["paper"] if method == "apprentice" else args.weightings:
                name = method if method == "apprentice" else f"{method}@{weighting}"
                # the apprentice alone never reads the expert: the ray-artefact study shares its runs
                folder = (out / "warm" if method == "apprentice" else warm) / "runs" / name / f"seed{seed}"
                if args.report:
                    if (done := finished_run(folder)) is not None:
                        runs.setdefault(name, []).append(done)
                    continue
                overrides = [*overrides_of(method), "SEED", str(seed), "SOLVER.MAX_ITER", str(steps),
                             "SOLVER.CHECKPOINT_PERIOD", str(max(steps // 2, 50))]  # fmt: skip
                if weighting == "matched":
                    overrides += matched_weights(method)
                config = WARM_METHODS[method][0]
                runs.setdefault(name, []).append(run_job(name, config, folder, overrides))
                write_warm_results(warm, runs, steps)
    clean = None
    if args.ray_artifacts:  # the same runs against the expert as it is, where finished: what each one loses
        names = [name for name in runs if name not in ("expert", "apprentice")]
        found = {name: finished_seeds(out / "warm" / "runs" / name, seeds) for name in names}
        clean = {name: group for name, group in found.items() if group}
    return write_warm_results(warm, runs, steps, clean)


def write_warm_results(
    warm: Path, runs: dict[str, list[dict]], steps: int, clean: dict[str, list[dict]] | None = None
) -> dict:
    """OUT/warm/results.md and .json: a Table-2-style table per weighting, gains over the warm apprentice,
    paired comparisons; for a ray-artefact study, each method against itself with the clean expert.
    OUT/warm/results.png draws the paired comparisons, one panel per weighting (and one against the
    clean expert)."""
    results = {name: summarize(group) for name, group in runs.items()}
    calibration = {
        path.stem: json.loads(path.read_text()) for path in sorted((warm / "calibration").glob("*.json"))
    }
    lines = [f"# Warm-start protocol: {steps} steps from one apprentice trained alone", ""]
    gains, paired, panels = {}, {}, {}
    for weighting in WEIGHTINGS:
        rows = weighting_rows(results, weighting)
        if len(rows) <= 2:
            continue
        lines += [
            f"## {weighting} weights",
            "",
            markdown_table(rows, {}, ["expert", *WARM_METHODS]),
        ]
        gains.update(gains_over_apprentice(rows, weighting))
        comparisons = [(name, "apprentice") for name in WARM_METHODS if name not in ("apprentice",)]
        comparisons += PAIRED_COMPARISONS
        found = paired_comparisons(rows, comparisons)
        lines += [f"### Paired by seed ({weighting} weights)", "", paired_table(found)]
        paired.update({f"{name}@{weighting} vs {baseline}": d for (name, baseline), d in found.items()})
        panels[f"{weighting} weights"] = found
    against_clean = {}
    if clean:
        both = {f"{n} ({label})": summarize(group) for n in clean for label, group in
                (("rays", runs[n]), ("clean", clean[n]))}  # fmt: skip
        found = paired_comparisons(both, [(f"{n} (rays)", f"{n} (clean)") for n in clean])
        lines += ["## Against the clean expert (the same method and seeds)", "", paired_table(found)]
        against_clean = {name.removesuffix(" (rays)"): d for (name, _), d in found.items()}
        panels["against the clean expert"] = found
    if calibration:
        lines += ["## Calibration (gradient norms at the apprentice's features, warm start)", ""]
        lines += ["| method | distillation | detection | scale to matched |", "|---|---|---|---|"]
        lines += [
            f"| {m} | {c['distillation_grad_norm']:.4g} | {c['detection_grad_norm']:.4g} | {c['scale']:.4g} |"
            for m, c in calibration.items()
        ]
    warm.mkdir(parents=True, exist_ok=True)
    content = {"steps": steps, "gains": gains, "paired": paired, "against_clean": against_clean,
               "calibration": calibration, **results}  # fmt: skip
    write_json_atomically(warm / "results.json", content)
    write_text_atomically(warm / "results.md", "\n".join(lines) + "\n")
    if drawn := {title: found for title, found in panels.items() if found}:
        save_figure(paired_figure(drawn), warm / "results.png")
    return content


def splits(version: str) -> tuple[str, str]:
    return ("mini_train", "mini_val") if version.endswith("mini") else ("train", "val")


def data_overrides(dataroot: Path, version: str) -> list[str]:
    train_split, val_split = splits(version)
    return ["DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", version,
            "DATASETS.TRAIN_SPLIT", train_split, "DATASETS.TEST_SPLIT", val_split]  # fmt: skip


def make_data(dataroot: Path, plan: dict, seed: int) -> None:
    if (dataroot / plan["version"] / "scene.json").is_file():
        print(f"[data] reusing {dataroot}")
        return
    config = SyntheticConfig(
        version=plan["version"], scenes=plan["scenes"], val_scenes=plan["val_scenes"],
        samples_per_scene=plan["samples"], image_size=(224, 400), seed=seed, workers=2,
    )  # fmt: skip
    generate(dataroot, config)


def finished_run(out: Path) -> dict | None:
    """The stored {"seed", "metrics", "weights", ...} of a completed run, or None."""
    info_file = out / RUN_INFO
    if info_file.is_file() and (out / MODEL_DIR / WEIGHTS_NAME).is_file():
        return json.loads(info_file.read_text())
    return None


def reported_run(folder: Path, name: str) -> dict:
    """The finished run in `folder` that --report needs; naming the folder when it is not finished."""
    if (done := finished_run(folder)) is None:
        raise SystemExit(f"--report: no finished {name} in {folder}; run without --report first")
    return done


def finished_seeds(folder: Path, seeds: list[int]) -> list[dict]:
    """The finished runs among FOLDER/seed<k> for `seeds`."""
    return [run for seed in seeds if (run := finished_run(folder / f"seed{seed}")) is not None]


def shown(config: list[Path]) -> str:
    """A job's config files as they are printed: relative to the repository, joined by " + "."""
    return " + ".join(
        path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path) for path in config
    )


def run_job(name: str, config: list[Path], out: Path, overrides: list[str]) -> dict:
    """Train (or finish, or reuse) one run; returns {"seed", "metrics", "weights", "seconds"}."""
    if (done := finished_run(out)) is not None:
        return done
    print(f"[run] {name}: {shown(config)} -> {out}", flush=True)
    cfg = load_config(config, [*overrides, "OUTPUT_DIR", str(out)])
    start = time.perf_counter()
    metrics = train(cfg, resume=True)
    info = {"seed": cfg.SEED, "metrics": metrics, "weights": str(out / MODEL_DIR),
            "seconds_this_sitting": time.perf_counter() - start}  # fmt: skip
    write_json_atomically(out / RUN_INFO, info)
    print(f"[run] {name} seed {cfg.SEED}: NDS {metrics['NDS']:.4f} mAP {metrics['mAP']:.4f}", flush=True)
    return info


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
    model = from_pretrained(folder)
    flops = count_flops(model, model.image_size)
    return {
        "gflops": flops.gflops,
        "params_m": flops.params_m,
        "fps": inference_fps(model, model.image_size, 5),
    }


def report(out: Path, runs: dict[str, list[dict]], data: list[str], distill: list[str], plan: dict) -> dict:
    """Measure step times and inference speed, then write results.md/json/png from the finished runs."""
    print("[measure] step times and inference speed", flush=True)
    timing = [*data, "OUTPUT_DIR", str(out / "timing"), "SOLVER.MAX_ITER", "1000"]
    apprentice_step = seconds_per_step(METHODS["apprentice"], timing)
    fd3d_step = seconds_per_step(METHODS["fd3d"], [*timing, *distill])
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data, one seed, apprentice vs CWD vs FD3D"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0)")
    parser.add_argument(
        "--protocol", choices=("paper", "warm"), default="paper", help="warm: the warm-start protocol"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(set(METHODS) | set(WARM_METHODS)),
        default=None,
        help=f"default: all (warm: {' '.join(WARM_HEAD_TO_HEAD)})",
    )
    parser.add_argument(
        "--weightings", nargs="+", choices=WEIGHTINGS, default=list(WEIGHTINGS), help="warm protocol only"
    )
    parser.add_argument(
        "--head-pretrain-iters",
        type=int,
        default=WARM["head_pretrain"],
        help="warm protocol: head-only steps before methods with a distillation head (default %(default)s)",
    )
    parser.add_argument(
        "--calibration-steps",
        type=int,
        default=WARM["calibration_steps"],
        help="warm protocol: steps measured per method to match the weights (default %(default)s)",
    )
    parser.add_argument(
        "--ray-artifacts",
        type=float,
        default=0.0,
        metavar="STRENGTH",
        help="warm protocol: a controlled imperfect expert, DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH (results "
        "in OUT/warm_rays<STRENGTH>/, calibrated again; default 0: the expert as it is)",
    )
    parser.add_argument(
        "--bev-range",
        type=float,
        default=0.0,
        metavar="HALF_WIDTH",
        help="warm protocol: the variant where masks act, both BEV grids over ±HALF_WIDTH m (e.g. 25.6) with "
        "the expert and the warm-start apprentice fine-tuned at that range (OUT/range<HALF_WIDTH>/; "
        "default 0: the configs' ±51.2 m)",
    )
    parser.add_argument("--out", default=None, help="default work/reproduce (--quick: work/reproduce_quick)")
    parser.add_argument("--steps", type=int, default=None, help="steps of each apprentice run")
    parser.add_argument("--expert-steps", type=int, default=None, help="steps of the expert")
    parser.add_argument(
        "--report", action="store_true", help="train nothing; write the table from the runs finished so far"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    plan = dict(QUICK if args.quick else FULL)
    plan["steps"] = args.steps or plan["steps"]
    plan["expert_steps"] = args.expert_steps or plan["expert_steps"]
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    known = WARM_METHODS if args.protocol == "warm" else METHODS
    if args.protocol != "warm" and (args.bev_range or args.ray_artifacts):
        parser.error("--bev-range and --ray-artifacts are variants of --protocol warm")
    if unknown := sorted(set(args.methods or []) - set(known)):
        parser.error(f"--methods {unknown} are not methods of the {args.protocol} protocol: {sorted(known)}")
    methods = [m for m in METHODS if m in (args.methods or (QUICK_METHODS if args.quick else METHODS))]
    plan.update(seeds=seeds, methods=methods)
    out = Path(args.out or ("work/reproduce_quick" if args.quick else "work/reproduce"))
    out.mkdir(parents=True, exist_ok=True)

    dataroot = out / "data"
    data = data_overrides(dataroot, plan["version"])
    if args.report:
        expert_run = reported_run(out / "expert", "expert")
    else:
        write_json_atomically(out / "plan.json", plan)
        make_data(dataroot, plan, seed=1000)
        expert_schedule = ["SOLVER.MAX_ITER", str(plan["expert_steps"]),
                           "SOLVER.CHECKPOINT_PERIOD", str(max(plan["expert_steps"] // 6, 50))]  # fmt: skip
        expert_run = run_job("expert", EXPERT, out / "expert", [*data, "SEED", "0", *expert_schedule])
    if args.protocol == "warm":
        if args.bev_range:
            out, data, expert_run = range_variant(out, data, expert_run, args.bev_range, args.report)
        return warm_study(out, data, expert_overrides(out, expert_run), expert_run, seeds, args)
    distill = expert_overrides(out, expert_run)
    schedule = ["SOLVER.CHECKPOINT_PERIOD", str(max(plan["steps"] // 4, 50)), "TEST.EVAL_PERIOD", "0"]
    runs: dict[str, list[dict]] = {"expert": [expert_run]}
    for method in methods:
        for seed in seeds:
            folder = out / "runs" / method / f"seed{seed}"
            if args.report:
                if (done := finished_run(folder)) is not None:
                    runs.setdefault(method, []).append(done)
                continue
            overrides = [*data, *schedule, "SEED", str(seed), "SOLVER.MAX_ITER", str(plan["steps"])]
            if method != "apprentice":
                overrides += distill
            runs.setdefault(method, []).append(run_job(method, METHODS[method], folder, overrides))
            results = {name: summarize(group) for name, group in runs.items()}
            write_results(results, {}, {}, ORDER, out / "partial")  # table so far, after every run
    if len(runs) == 1:
        raise SystemExit(f"no finished run of {', '.join(methods)} in {out / 'runs'} to report")
    return report(out, runs, data, distill, plan)


if __name__ == "__main__":
    main()
