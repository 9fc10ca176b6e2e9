"""What distillation adds to a training step: the median step time of an apprentice trained alone and of
the same apprentice distilled with the expert's features cached, measured with the trainer's own step.

    python tools/benchmark_distillation_step.py --out benchmarks/results/distillation_step.json
    python tools/benchmark_distillation_step.py --method cwd --profile work/profile.txt
    python tools/benchmark_distillation_step.py --method smgd_only --flops-only

It generates a small synthetic v1.0-mini dataroot (or reads --dataroot), fills the expert feature cache in
one pass over the train split, then times the two jobs' steps interleaved in rounds, so a slow spell of the
machine slows both. The expert defaults to the shipped CPU BEVFormer expert; its architecture comes from
the pair's config. Run it on an otherwise idle machine. Both jobs' GFLOPs per training step (forward and
backward) are counted too: their ratio is what the step-time ratio would be at equal arithmetic speed,
the floor for any change that keeps every loss value; `--flops-only` counts them without timing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry
from tqdm import tqdm

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.config import distill_config, distill_methods, distill_pairs, load_config
from fd3d.data.synthetic import SyntheticConfig, generate
from fd3d.engine.trainer import TrainingRun, batches, prepare_training, training_step

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_EXPERT = ROOT / "projects" / "BEVFormer" / "zoo" / "cpu_expert"
VERSION, TRAIN_SPLIT, VAL_SPLIT = "v1.0-mini", "mini_train", "mini_val"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pair", default="bevformer_cpu", choices=distill_pairs(), help="detector pair")
    parser.add_argument("--method", default="fd3d", choices=distill_methods(), help="distillation method")
    parser.add_argument("--expert", default=str(SHIPPED_EXPERT), help="expert model folder or Hub id")
    parser.add_argument("--dataroot", help="a nuScenes-format dataroot (default: generate one in --work)")
    parser.add_argument("--work", default="work/benchmark_distillation_step", help="data, cache and runs")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per job (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --steps (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--flops-only", action="store_true", help="count GFLOPs per step only, time nothing (any machine)"
    )
    parser.add_argument("--profile", help="write a torch.profiler table of 10 distillation steps here")
    parser.add_argument("--out", help="write the result as JSON here (atomically)")
    return parser.parse_args(argv)


def dataroot_of(args: argparse.Namespace) -> Path:
    if args.dataroot:
        return Path(args.dataroot)
    dataroot = Path(args.work) / "data"
    if not (dataroot / VERSION / "scene.json").is_file():
        generate(dataroot, SyntheticConfig(version=VERSION, scenes=4, samples_per_scene=6, seed=7))
    return dataroot


def shown(path: str) -> str:
    """`path` relative to the repository when inside it, so results do not name this machine's folders."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path


def record_parts(run: TrainingRun, parts: dict[str, list[float]]) -> None:
    """Time the parts of every later step: forward, backward, gradient clipping, optimizer step."""

    def timed(name: str, call):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = call(*args, **kwargs)
            parts.setdefault(name, []).append(time.perf_counter() - start)
            return result

        return wrapper

    run.model.forward = timed("forward", run.model.forward)
    run.accelerator.backward = timed("backward", run.accelerator.backward)
    run.accelerator.clip_grad_norm_ = timed("clip", run.accelerator.clip_grad_norm_)
    run.optimizer.step = timed("optimizer", run.optimizer.step)


def time_steps(run: TrainingRun, stream, cfg, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        batch = next(stream)
        start = time.perf_counter()
        training_step(run, batch, cfg)
        times.append(time.perf_counter() - start)
    return times


class CountedFlops(TorchDispatchMode):
    """FLOPs of every operator torch's `flop_registry` has a formula for (convolutions, matmuls, attention;
    forward and backward, 2 per multiply-add), counted as the operators run. fvcore's counter
    (`fd3d.evaluation.complexity`) traces a forward pass and cannot see a backward; torch's
    `FlopCounterMode` also attributes counts to modules through gradient hooks, which BEVFormer's encoder
    inputs refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if (formula := flop_registry.get(func._overloadpacket)) is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def training_gflops(run: TrainingRun, stream, cfg) -> float:
    """GFLOPs of one training step, forward and backward; elementwise work, sampling and the optimizer
    are not counted.

    The distillation job's extra GFLOPs over the apprentice's are work its losses are defined by: removing
    them changes a value, so their ratio is the step-time ratio to expect at equal arithmetic speed."""
    with CountedFlops() as counter:
        training_step(run, next(stream), cfg)
    return counter.total / 1e9


def timed(runs: dict[str, TrainingRun], streams: dict, jobs: dict, args: argparse.Namespace) -> dict:
    """Median step times of both jobs, timed in interleaved rounds, and of their parts."""
    time_steps(runs["apprentice"], streams["apprentice"], jobs["apprentice"], 3)
    times: dict[str, list[float]] = {name: [] for name in jobs}
    parts: dict[str, dict[str, list[float]]] = {name: {} for name in jobs}
    for name, run in runs.items():
        record_parts(run, parts[name])
    for _ in tqdm(range(args.rounds), desc="timing rounds"):
        for name in jobs:
            times[name] += time_steps(runs[name], streams[name], jobs[name], args.steps)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "timed_steps": args.steps * args.rounds,
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "apprentice_step_s": medians["apprentice"],
        "distillation_step_s": medians["distillation"],
        "ratio": medians["distillation"] / medians["apprentice"],
        "median_ms": {
            name: {part: 1000 * statistics.median(values) for part, values in job_parts.items()}
            for name, job_parts in parts.items()
        },
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    dataroot = dataroot_of(args)
    work = Path(args.work)
    data = [
        "DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", VERSION, "DATASETS.TRAIN_SPLIT", TRAIN_SPLIT,
        "DATASETS.TEST_SPLIT", VAL_SPLIT, "SOLVER.MAX_ITER", "100000", "SOLVER.WARMUP_ITERS", "10",
    ]  # fmt: skip
    files = distill_config(args.pair, args.method)
    distill_cfg = load_config(
        files,
        [*data, "OUTPUT_DIR", str(work / "distill"), "DISTILL.EXPERT.WEIGHTS", args.expert,
         "DISTILL.EXPERT.FEATURE_CACHE", str(work / "expert_cache")],
    )  # fmt: skip
    apprentice_cfg = load_config(files[:1], [*data, "OUTPUT_DIR", str(work / "apprentice")])  # the pair alone
    jobs = {"apprentice": apprentice_cfg, "distillation": distill_cfg}
    runs = {name: prepare_training(cfg) for name, cfg in jobs.items()}
    streams = {name: batches(runs[name], jobs[name]) for name in jobs}
    samples = len(runs["distillation"].loader.dataset)
    batch_size = distill_cfg.SOLVER.IMS_PER_BATCH
    # one epoch fills the cache, a few steps each warm the allocators up
    for _ in tqdm(range(-(-samples // batch_size) + 3), desc="fill the expert cache"):
        training_step(runs["distillation"], next(streams["distillation"]), distill_cfg)
    gflops = {name: training_gflops(runs[name], streams[name], jobs[name]) for name in jobs}
    result = {
        "pair": args.pair,
        "method": args.method,
        "expert": shown(args.expert),
        "feature_cache": True,
        "ims_per_batch": batch_size,
        "training_gflops": gflops,
        "flop_ratio": gflops["distillation"] / gflops["apprentice"],
        "parameter_tensors": {
            name: sum(1 for p in run.model.parameters() if p.requires_grad) for name, run in runs.items()
        },
    }
    if not args.flops_only:
        result.update(timed(runs, streams, jobs, args))
    print(json.dumps(result, indent=2))
    if args.profile:
        run, cfg = runs["distillation"], distill_cfg
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(10):
                training_step(run, next(streams["distillation"]), cfg)
        table = profiler.key_averages().table(sort_by="cpu_time_total", row_limit=40)
        write_text_atomically(args.profile, table)
        print(f"profile: {args.profile}")
    if args.out:
        write_json_atomically(args.out, result)
        print(f"written: {args.out}")
    return result


if __name__ == "__main__":
    main()
