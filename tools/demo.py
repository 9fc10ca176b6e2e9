#!/usr/bin/env python
"""The whole fd3d story on built-in synthetic data, on a CPU, in about ten minutes (the README's main job).

A distillation library starts from a trained expert, as its users start from a downloaded checkpoint:
the demo takes the CPU BEVFormer expert shipped in the repository (projects/BEVFormer/zoo/cpu_expert,
trained 6000 steps by tools/reproduce.py on data of another seed) and

1. generates a synthetic nuScenes-format dataset (v1.0-trainval layout, official scene names, 224x400
   renders) the expert has never seen, and checks the official evaluator on it (ground truth scores 1.0);
2. scores the expert on the val split with the official devkit;
3. trains the apprentice alone, and the same apprentice distilled from the expert with FD3D (same data
   order, steps and schedule; the expert's features cached on disk after their first use);
4. scores both, counts FLOPs and speed, prints one table (OUT/demo_results.json);
5. draws pictures (OUT/figures/): ground truth vs predictions in BEV for the three models, the boxes of
   each model on the six camera images, BEV activations (the paper's Fig. 2/5), NDS and mAP bars.

Every stage is kept: a re-run reuses the data, the trained models and the expert's evaluation. This is a
demonstration with short schedules on one seed, not a benchmark; tools/reproduce.py measures the
paper's claims over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fd3d.config import distill_config, load_config
from fd3d.data.nuscenes import NuScenesReader, decode_row
from fd3d.data.synthetic import SyntheticConfig, generate
from fd3d.engine.trainer import MODEL_DIR, train
from fd3d.evaluation.complexity import count_flops, inference_fps
from fd3d.evaluation.inference import evaluate_model
from fd3d.evaluation.nuscenes_eval import METRIC_KEYS, Detections, evaluate_detections
from fd3d.evaluation.visualize import plot_metric_bars, visualize_sample
from fd3d.hub import WEIGHTS_NAME, from_pretrained

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_EXPERT = ROOT / "projects" / "BEVFormer" / "zoo" / "cpu_expert"
# config files of each job, overlays merged in order: the CPU BEVFormer apprentice; the CPU pair + FD3D
APPRENTICE_CONFIG = [ROOT / "projects" / "BEVFormer" / "configs" / "cpu_apprentice.yaml"]
FD3D_CONFIG = distill_config("bevformer_cpu", "fd3d")
VERSION, TRAIN_SPLIT, VAL_SPLIT = "v1.0-trainval", "train", "val"
IMAGE_SIZE = (224, 400)  # the shipped expert's input size; the apprentice reads them at half the size
NAMES = ("expert", "apprentice", "fd3d")  # file-name-safe model names, titles of the figures' panels


def make_data(dataroot: Path, args: argparse.Namespace) -> None:
    if (dataroot / VERSION / "scene.json").is_file():
        print(f"[data] reusing {dataroot}")
        return
    scenes = f"{args.train_scenes} train + {args.val_scenes} val scenes"
    print(f"[data] {scenes} x {args.samples_per_scene} keyframes, seed {args.seed}")
    config = SyntheticConfig(
        version=VERSION, scenes=args.train_scenes, val_scenes=args.val_scenes,
        samples_per_scene=args.samples_per_scene, image_size=IMAGE_SIZE, seed=args.seed, workers=2,
    )  # fmt: skip
    generate(dataroot, config)


def check_evaluator(dataroot: Path, out: Path) -> float:
    """Ground truth fed back as predictions must score a perfect NDS: the data and metrics agree."""
    reader = NuScenesReader(dataroot, VERSION)
    pc_range = load_config(APPRENTICE_CONFIG).MODEL.POINT_CLOUD_RANGE
    detections = {}
    for token in reader.sample_tokens(VAL_SPLIT):
        sample = decode_row(reader.read_row(token), pc_range=pc_range)
        detections[token] = Detections(
            sample["gt_boxes"], [1.0] * len(sample["gt_boxes"]), sample["gt_labels"]
        )
    return evaluate_detections(reader, detections, VAL_SPLIT, out)["NDS"]


def score_expert(expert: torch.nn.Module, dataroot: Path, out: Path) -> dict:
    """The expert's devkit metrics on the val split (OUT/expert/metrics.json, reused when present)."""
    metrics_file = out / "metrics.json"
    if metrics_file.is_file():
        print(f"[eval] reusing {metrics_file}")
        return json.loads(metrics_file.read_text())
    return evaluate_model(expert, dataroot, VERSION, VAL_SPLIT, out)


def run_job(config: list[Path], out: Path, dataroot: Path, steps: int, extra: list[str]) -> Path:
    """Train one job unless its model folder exists; returns the folder (OUT/<job>/model)."""
    model_dir = out / MODEL_DIR
    if (model_dir / WEIGHTS_NAME).is_file():
        print(f"[train] reusing {model_dir}")
        return model_dir
    overrides = [
        "DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", VERSION, "DATASETS.TRAIN_SPLIT", TRAIN_SPLIT,
        "DATASETS.TEST_SPLIT", VAL_SPLIT, "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", str(steps),
        "SOLVER.CHECKPOINT_PERIOD", str(max(steps // 2, 1)), "TEST.EVAL_PERIOD", "0", *extra,
    ]  # fmt: skip
    print(f"[train] {' + '.join(path.name for path in config)} for {steps} steps -> {out}")
    train(load_config(config, overrides))
    return model_dir


def describe(name: str, model: torch.nn.Module, metrics: dict) -> dict:
    flops = count_flops(model, model.image_size)
    row = {key: metrics[key] for key in METRIC_KEYS}
    fps = inference_fps(model, model.image_size, 3)
    return {"model": name, **row, "gflops": flops.gflops, "params_m": flops.params_m, "fps": fps}


def format_table(rows: list[dict]) -> str:
    header = (
        f"{'model':<12}" + "".join(f"{k:>8}" for k in METRIC_KEYS) + f"{'GFLOPs':>9}{'params':>9}{'fps':>7}"
    )
    lines = [header]
    for row in rows:
        values = "".join(f"{row[k]:8.4f}" for k in METRIC_KEYS)
        lines.append(
            f"{row['model']:<12}{values}{row['gflops']:9.2f}{row['params_m']:8.2f}M{row['fps']:7.1f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="work/demo", help="output folder (default work/demo)")
    parser.add_argument(
        "--expert",
        default=str(SHIPPED_EXPERT.relative_to(ROOT)),
        help="expert: a model folder or a Hub id (default: the shipped CPU expert, %(default)s)",
    )
    parser.add_argument(
        "--steps", type=int, default=1000, help="training steps of each apprentice (default 1000)"
    )
    parser.add_argument("--train-scenes", type=int, default=30, help="synthetic train scenes (default 30)")
    parser.add_argument("--val-scenes", type=int, default=6, help="synthetic val scenes (default 6)")
    parser.add_argument("--samples-per-scene", type=int, default=8, help="keyframes per scene (default 8)")
    parser.add_argument("--seed", type=int, default=2026, help="data and training seed (default 2026)")
    parser.add_argument("--sample-index", type=int, default=0, help="val sample drawn in the figures")
    parser.add_argument("--score-threshold", type=float, default=0.3, help="lowest score drawn (default 0.3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(2)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        timings[stage] = round(now - since, 1)
        print(f"[time] {stage}: {timings[stage]:.0f} s")
        return now

    out = Path(args.out)
    dataroot = out / "data"
    make_data(dataroot, args)
    gt_nds = check_evaluator(dataroot, out / "gt")
    print(f"[eval] evaluator check, ground truth as predictions: NDS {gt_nds:.4f}")
    clock = lap("data", start)

    print(f"[expert] {args.expert}")
    expert = from_pretrained(args.expert)
    expert_metrics = score_expert(expert, dataroot, out / "expert")
    print(f"[eval] expert on {VAL_SPLIT}: NDS {expert_metrics['NDS']:.4f} mAP {expert_metrics['mAP']:.4f}")
    clock = lap("expert evaluation", clock)

    seed = ["SEED", str(args.seed)]
    apprentice_dir = run_job(APPRENTICE_CONFIG, out / "apprentice", dataroot, args.steps, seed)
    clock = lap("apprentice training", clock)
    distill = [
        "DISTILL.EXPERT.WEIGHTS",
        args.expert,
        "DISTILL.EXPERT.FEATURE_CACHE",
        str(out / "expert_cache"),
    ]
    fd3d_dir = run_job(FD3D_CONFIG, out / "fd3d", dataroot, args.steps, [*seed, *distill])
    clock = lap("FD3D training", clock)

    models = {"expert": expert, "apprentice": from_pretrained(str(apprentice_dir)),
              "fd3d": from_pretrained(str(fd3d_dir))}  # fmt: skip
    metrics = {
        "expert": expert_metrics,
        "apprentice": json.loads((apprentice_dir.parent / "metrics.json").read_text()),
        "fd3d": json.loads((fd3d_dir.parent / "metrics.json").read_text()),
    }
    rows = [describe(name, models[name], metrics[name]) for name in NAMES]
    clock = lap("FLOPs and speed", clock)

    figures = out / "figures"
    written = visualize_sample(
        models, dataroot, VERSION, VAL_SPLIT, args.sample_index, figures, args.score_threshold
    )
    written["metrics"] = plot_metric_bars(
        {f"{name} (NDS {metrics[name]['NDS']:.3f})": metrics[name] for name in NAMES}, figures / "metrics.png"
    )
    lap("figures", clock)
    timings["total"] = round(time.perf_counter() - start, 1)

    print("\n" + format_table(rows))
    results = {"rows": rows, "seconds": timings, "expert": args.expert, "steps": args.steps}
    (out / "demo_results.json").write_text(json.dumps(results, indent=2))
    print(f"\nfigures of val sample {args.sample_index}:")
    for path in written.values():
        print(f"  {path}")
    print(f"wrote {out / 'demo_results.json'}; models and TensorBoard logs in {out}/<job>/")
    print(f"[time] total: {timings['total'] / 60:.1f} min")
    return rows


if __name__ == "__main__":
    main()
