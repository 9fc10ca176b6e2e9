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
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fd3d.config import load_config
from fd3d.data.synthetic import SyntheticConfig, generate
from fd3d.engine.trainer import MODEL_DIR, batches, prepare_training, train, training_step
from fd3d.evaluation.complexity import count_flops, inference_fps
from fd3d.evaluation.reproduction import gain_and_gap, summarize, write_results
from fd3d.hub import from_pretrained

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERT = "BEVFormer/cpu_expert.yaml"
# Run order: the methods the paper's claim rests on first, so a study cut short still has every seed of them.
METHODS = {
    "apprentice": "BEVFormer/cpu_apprentice.yaml",
    "fd3d": "distill/bevformer_cpu/fd3d.yaml",
    "cwd": "distill/bevformer_cpu/cwd.yaml",
    "fitnet": "distill/bevformer_cpu/fitnet.yaml",
    "mgd": "distill/bevformer_cpu/mgd.yaml",
    "smgd_only": "distill/bevformer_cpu/smgd_only.yaml",
    "qfd_only": "distill/bevformer_cpu/qfd_only.yaml",
    # not a method of the paper: FD3D with its distillation head pre-trained on the expert first
    "fd3d_head_pretrained": "distill/bevformer_cpu/fd3d_head_pretrained.yaml",
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
    if info_file.is_file() and (out / MODEL_DIR / "model.safetensors").is_file():
        return json.loads(info_file.read_text())
    return None


def run_job(name: str, config: str, out: Path, overrides: list[str]) -> dict:
    """Train (or finish, or reuse) one run; returns {"seed", "metrics", "weights", "seconds"}."""
    if (done := finished_run(out)) is not None:
        return done
    print(f"[run] {name}: {config} -> {out}", flush=True)
    cfg = load_config(CONFIGS / config, [*overrides, "OUTPUT_DIR", str(out)])
    start = time.perf_counter()
    metrics = train(cfg, resume=True)
    info = {"seed": cfg.SEED, "metrics": metrics, "weights": str(out / MODEL_DIR),
            "seconds_this_sitting": time.perf_counter() - start}  # fmt: skip
    (out / RUN_INFO).write_text(json.dumps(info, indent=2))
    print(f"[run] {name} seed {cfg.SEED}: NDS {metrics['NDS']:.4f} mAP {metrics['mAP']:.4f}", flush=True)
    return info


def seconds_per_step(config: str, overrides: list[str], steps: int = 20) -> float:
    """Median wall time of a training step (after 3 warm-up steps), with the trainer's own step."""
    cfg = load_config(CONFIGS / config, overrides)
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
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=None, help="default: all")
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
    methods = [m for m in METHODS if m in (args.methods or (QUICK_METHODS if args.quick else METHODS))]
    plan.update(seeds=seeds, methods=methods)
    out = Path(args.out or ("work/reproduce_quick" if args.quick else "work/reproduce"))
    out.mkdir(parents=True, exist_ok=True)

    dataroot = out / "data"
    data = data_overrides(dataroot, plan["version"])
    if args.report:
        expert_run = finished_run(out / "expert")
        if expert_run is None:
            raise SystemExit(f"--report: no finished expert in {out / 'expert'}; run without --report first")
    else:
        (out / "plan.json").write_text(json.dumps(plan, indent=2))
        make_data(dataroot, plan, seed=1000)
        expert_schedule = ["SOLVER.MAX_ITER", str(plan["expert_steps"]),
                           "SOLVER.CHECKPOINT_PERIOD", str(max(plan["expert_steps"] // 6, 50))]  # fmt: skip
        expert_run = run_job("expert", EXPERT, out / "expert", [*data, "SEED", "0", *expert_schedule])
    distill = ["DISTILL.EXPERT.WEIGHTS", expert_run["weights"]]
    distill += ["DISTILL.EXPERT.FEATURE_CACHE", str(out / "expert_cache")]
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
