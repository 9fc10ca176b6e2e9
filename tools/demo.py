#!/usr/bin/env python
"""The whole fd3d story on built-in synthetic data, on a CPU, in about ten minutes (the README's main job).

A distillation library starts from trained models, as its users start from downloaded checkpoints. The
model zoo in projects/BEVFormer/zoo/ holds three, trained by tools/distillation_study.py (seed 0, 4000
steps on the study's data, seed 1000): the CPU BEVFormer expert, the apprentice (a sixth of its FLOPs)
trained alone, and the same apprentice trained with FD3D from the expert. The demo

1. generates a synthetic nuScenes-format dataset of another seed (v1.0-trainval layout, official scene
   names, 224x400 renders) that none of them has seen, and checks the official evaluator on it (ground
   truth scores 1.0);
2. scores the three zoo models on its val split with the official devkit: what distillation bought;
3. runs the workflow live on a short schedule: the apprentice alone and with FD3D (same data order, steps
   and schedule; the expert's features cached on disk after their first use), scored the same way;
4. prints one table that says which rows are zoo models and which the live run, with FLOPs and speed
   (OUT/demo_results.json);
5. draws pictures of the zoo models side by side (OUT/figures/): ground truth vs predictions in BEV, the
   boxes on the six camera images, BEV and image activations (the paper's Fig. 2/5), NDS and mAP bars.

Torch runs with 2 threads; the same command prints the same numbers. Every stage is kept: a re-run reuses
the data, the evaluations and the trained live models. The live run is a workflow at a few hundred steps,
not a result; the zoo rows are the result, and tools/distillation_study.py measures it over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fd3d.atomic import write_json_atomically
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
ZOO_ROOT = ROOT / "projects" / "BEVFormer" / "zoo"
# the zoo models the demo scores: (row name, folder)
ZOO = {
    "expert": ZOO_ROOT / "cpu_expert",
    "apprentice": ZOO_ROOT / "cpu_apprentice_bev50",
    "fd3d": ZOO_ROOT / "cpu_apprentice_bev50_fd3d",
}
# config files of each live job, overlays merged in order: the apprentice; the pair + FD3D
APPRENTICE_CONFIG = [ROOT / "projects" / "BEVFormer" / "configs" / "cpu_apprentice_bev50.yaml"]
FD3D_CONFIG = distill_config("bevformer_cpu_bev50", "fd3d")
VERSION, TRAIN_SPLIT, VAL_SPLIT = "v1.0-trainval", "train", "val"
IMAGE_SIZE = (224, 400)  # the expert's input size; the apprentices read the images at half the size
THREADS = 2


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


def describe(name: str, kind: str, model: torch.nn.Module, metrics: dict) -> dict:
    flops = count_flops(model, model.image_size)
    row = {key: metrics[key] for key in METRIC_KEYS}
    fps = inference_fps(model, model.image_size, 3)
    return {
        "model": name,
        "kind": kind,
        **row,
        "gflops": flops.gflops,
        "params_m": flops.params_m,
        "fps": fps,
    }


def format_table(rows: list[dict]) -> str:
    """Zoo rows, then the live run's, each group under its own heading; fps vary by ±20 % between runs."""
    header = (
        f"{'model':<12}" + "".join(f"{k:>8}" for k in METRIC_KEYS) + f"{'GFLOPs':>9}{'params':>9}{'fps':>7}"
    )
    lines = []
    for kind in dict.fromkeys(row["kind"] for row in rows):
        lines += [kind, header]
        for row in (r for r in rows if r["kind"] == kind):
            values = "".join(f"{row[k]:8.4f}" for k in METRIC_KEYS)
            lines.append(
                f"{row['model']:<12}{values}{row['gflops']:9.2f}{row['params_m']:8.2f}M{row['fps']:7.1f}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def score(model: torch.nn.Module, dataroot: Path, out: Path) -> dict:
    """Devkit metrics of `model` on the val split (OUT/<name>/metrics.json, reused when present)."""
    metrics_file = out / "metrics.json"
    if metrics_file.is_file():
        print(f"[eval] reusing {metrics_file}")
        return json.loads(metrics_file.read_text())
    return evaluate_model(model, dataroot, VERSION, VAL_SPLIT, out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="work/demo", help="output folder (default work/demo)")
    parser.add_argument(
        "--steps", type=int, default=300, help="training steps of each live apprentice (default 300)"
    )
    parser.add_argument("--train-scenes", type=int, default=12, help="synthetic train scenes (default 12)")
    parser.add_argument("--val-scenes", type=int, default=6, help="synthetic val scenes (default 6)")
    parser.add_argument("--samples-per-scene", type=int, default=8, help="keyframes per scene (default 8)")
    parser.add_argument("--seed", type=int, default=2026, help="data and training seed (default 2026)")
    parser.add_argument("--sample-index", type=int, default=0, help="val sample drawn in the figures")
    parser.add_argument("--score-threshold", type=float, default=0.3, help="lowest score drawn (default 0.3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(THREADS)
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

    zoo = {name: from_pretrained(str(folder)) for name, folder in ZOO.items()}
    metrics = {}
    for name, model in zoo.items():
        print(f"[zoo] {name}: {ZOO[name].relative_to(ROOT)}")
        metrics[name] = score(model, dataroot, out / "zoo" / name)
        found = metrics[name]
        print(f"[eval] zoo {name} on unseen {VAL_SPLIT}: NDS {found['NDS']:.4f} mAP {found['mAP']:.4f}")
    clock = lap("zoo evaluation", clock)

    seed = ["SEED", str(args.seed)]
    live_dirs = {
        "apprentice": run_job(APPRENTICE_CONFIG, out / "live" / "apprentice", dataroot, args.steps, seed)
    }
    clock = lap("live apprentice training", clock)
    distill = [
        "DISTILL.EXPERT.WEIGHTS",
        str(ZOO["expert"]),
        "DISTILL.EXPERT.FEATURE_CACHE",
        str(out / "expert_cache"),
    ]
    live_dirs["fd3d"] = run_job(FD3D_CONFIG, out / "live" / "fd3d", dataroot, args.steps, [*seed, *distill])
    clock = lap("live FD3D training", clock)

    zoo_kind = "zoo models (4000 steps on the study's data, scored on this unseen data)"
    live_kind = f"live run ({args.steps} steps on this data's train split: the workflow, not a result)"
    rows = [describe(name, zoo_kind, zoo[name], metrics[name]) for name in ZOO]
    for name, folder in live_dirs.items():
        live_metrics = json.loads((folder.parent / "metrics.json").read_text())
        rows.append(describe(name, live_kind, from_pretrained(str(folder)), live_metrics))
    clock = lap("FLOPs and speed", clock)

    figures = out / "figures"
    written = visualize_sample(
        zoo, dataroot, VERSION, VAL_SPLIT, args.sample_index, figures, args.score_threshold
    )
    written["metrics"] = plot_metric_bars(
        {f"{name} (NDS {metrics[name]['NDS']:.3f})": metrics[name] for name in ZOO}, figures / "metrics.png"
    )
    lap("figures", clock)
    timings["total"] = round(time.perf_counter() - start, 1)

    print("\n" + format_table(rows))
    gain = metrics["fd3d"]["NDS"] - metrics["apprentice"]["NDS"]
    print(f"\nFD3D over the apprentice alone (zoo, unseen data): {gain:+.4f} NDS, "
          f"{metrics['fd3d']['mAP'] - metrics['apprentice']['mAP']:+.4f} mAP")  # fmt: skip
    results = {"rows": rows, "seconds": timings, "zoo": {k: str(v.relative_to(ROOT)) for k, v in ZOO.items()},
               "steps": args.steps, "threads": THREADS}  # fmt: skip
    write_json_atomically(out / "demo_results.json", results)
    print(f"\nfigures of val sample {args.sample_index}:")
    for path in written.values():
        print(f"  {path}")
    print(f"wrote {out / 'demo_results.json'}; live models and TensorBoard logs in {out}/live/<job>/")
    print(f"[time] total: {timings['total'] / 60:.1f} min ({THREADS} torch threads)")
    return rows


if __name__ == "__main__":
    main()
