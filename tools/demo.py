#!/usr/bin/env python
"""The whole fd3d story on built-in synthetic data, on a CPU, in minutes (the README's main command).

1. generate a synthetic nuScenes-format dataset (v1.0-mini layout, 224x400 renders) and check the
   official evaluator on it (ground truth as predictions must score NDS 1.0);
2. train a CPU-scale expert, stored as a Hub-ready folder (reused when it exists);
3. train the apprentice alone, and the same apprentice distilled from the expert with FD3D;
4. evaluate all three with the official nuScenes metrics, count FLOPs and speed, print one table.

This is a demonstration of the pipeline with short schedules, not a benchmark: the numbers of a few
hundred CPU steps on 8 training scenes are noisy. `tools/reproduce.py` measures the paper's claims.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fd3d.config import load_config
from fd3d.data.nuscenes import NuScenesReader, decode_row
from fd3d.data.synthetic import SyntheticConfig, generate
from fd3d.engine.trainer import MODEL_DIR, train
from fd3d.evaluation.complexity import count_flops, inference_fps
from fd3d.evaluation.nuscenes_eval import METRIC_KEYS, Detections, evaluate_detections
from fd3d.hub import from_pretrained

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PAIRS = {
    "bevformer": (
        "BEVFormer/cpu_expert.yaml",
        "BEVFormer/cpu_apprentice.yaml",
        "distill/bevformer_cpu/fd3d.yaml",
    ),
    "detr3d": ("DETR3D/cpu_expert.yaml", "DETR3D/cpu_apprentice.yaml", "distill/detr3d_cpu/fd3d.yaml"),
}


def make_data(dataroot: Path, scenes: int, samples_per_scene: int, seed: int) -> None:
    if (dataroot / "v1.0-mini" / "scene.json").is_file():
        print(f"[data] reusing {dataroot}")
        return
    config = SyntheticConfig(scenes=scenes, samples_per_scene=samples_per_scene, seed=seed, workers=2)
    generate(dataroot, config)


def check_evaluator(dataroot: Path, out: Path) -> float:
    """Ground truth fed back as predictions must score a perfect NDS: the data and metrics agree."""
    reader = NuScenesReader(dataroot, "v1.0-mini")
    pc_range = load_config(CONFIGS / PAIRS["detr3d"][1]).MODEL.POINT_CLOUD_RANGE
    detections = {}
    for token in reader.sample_tokens("mini_val"):
        sample = decode_row(reader.read_row(token), pc_range=pc_range)
        detections[token] = Detections(
            sample["gt_boxes"], [1.0] * len(sample["gt_boxes"]), sample["gt_labels"]
        )
    return evaluate_detections(reader, detections, "mini_val", out)["NDS"]


def run_job(config: str, out: Path, dataroot: Path, steps: int, extra: list[str]) -> Path:
    """Train one job unless its model folder exists; returns the folder."""
    model_dir = out / MODEL_DIR
    if (model_dir / "model.safetensors").is_file():
        print(f"[train] reusing {model_dir}")
        return model_dir
    overrides = [
        "DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "DATASETS.TEST_SPLIT", "mini_val",
        "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", str(steps),
        "SOLVER.CHECKPOINT_PERIOD", str(max(steps // 2, 1)), *extra,
    ]  # fmt: skip
    print(f"[train] {config} for {steps} steps -> {out}")
    start = time.perf_counter()
    train(load_config(CONFIGS / config, overrides))
    print(f"[train] done in {time.perf_counter() - start:.0f} s")
    return model_dir


def describe(name: str, folder: Path) -> dict:
    model = from_pretrained(str(folder))
    metrics = json.loads((folder.parent / "metrics.json").read_text())
    flops = count_flops(model, model.image_size)
    row = {key: metrics[key] for key in METRIC_KEYS}
    row.update(gflops=flops.gflops, params_m=flops.params_m, fps=inference_fps(model, model.image_size, 3))
    return {"model": name, **row}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="work/demo", help="output folder (default work/demo)")
    parser.add_argument("--pair", choices=sorted(PAIRS), default="bevformer", help="detector family")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each job (default 300)")
    parser.add_argument("--expert-steps", type=int, default=None, help="expert's steps (default: --steps)")
    parser.add_argument("--scenes", type=int, default=10, help="synthetic scenes (2 of them are mini_val)")
    parser.add_argument("--samples-per-scene", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    out = Path(args.out)
    dataroot = out / "data"
    make_data(dataroot, args.scenes, args.samples_per_scene, args.seed)
    gt_nds = check_evaluator(dataroot, out / "gt")
    print(f"[eval] evaluator check, ground truth as predictions: NDS {gt_nds:.4f}")

    expert_cfg, apprentice_cfg, fd3d_cfg = PAIRS[args.pair]
    seed = ["SEED", str(args.seed)]
    expert = run_job(expert_cfg, out / "expert", dataroot, args.expert_steps or args.steps, seed)
    apprentice = run_job(apprentice_cfg, out / "apprentice", dataroot, args.steps, seed)
    distilled = run_job(
        fd3d_cfg, out / "fd3d", dataroot, args.steps, [*seed, "DISTILL.EXPERT.WEIGHTS", str(expert)]
    )

    rows = [describe(name, folder) for name, folder in
            (("expert", expert), ("apprentice", apprentice), ("apprentice + FD3D", distilled))]  # fmt: skip
    header = (
        f"{'model':<18}" + "".join(f"{k:>8}" for k in METRIC_KEYS) + f"{'GFLOPs':>9}{'params':>9}{'fps':>7}"
    )
    print("\n" + header)
    for row in rows:
        values = "".join(f"{row[k]:8.4f}" for k in METRIC_KEYS)
        print(f"{row['model']:<18}{values}{row['gflops']:9.2f}{row['params_m']:8.2f}M{row['fps']:7.1f}")
    (out / "demo_results.json").write_text(json.dumps(rows, indent=2))
    print(f"\nwrote {out / 'demo_results.json'}; models and TensorBoard logs in {out}/<job>/")
    return rows


if __name__ == "__main__":
    main()
