"""Training-time diagnostics of a distillation run (`tools/diagnose_distillation.py`, the warm-start study's
weight calibration): gradient norms per term while distilling, then the distillation head's measures on
validation samples. The per-batch measurements live in `fd3d.distill.diagnostics`.
"""

from __future__ import annotations

import numpy as np
import torch
from fvcore.common.config import CfgNode
from tqdm import tqdm

from fd3d.data.build import build_dataset
from fd3d.data.dataset import collate_samples
from fd3d.distill import Distiller
from fd3d.distill.diagnostics import (
    feature_gradient_norms,
    qfd_points_on_objects,
    ray_artifact_index,
    recording_features,
)
from fd3d.distill.focal_queries import focal_boxes
from fd3d.engine.trainer import TrainingRun, batches, training_step
from fd3d.modeling.evaluating import evaluating


def _mean_norms(records: list[dict[str, dict]]) -> dict[str, dict]:
    """{term: {stage: mean norm}} over the measured steps."""
    merged: dict[str, dict[str, list[float]]] = {}
    for record in records:
        for term, stages in record.items():
            for stage, value in stages.items():
                merged.setdefault(term, {}).setdefault(stage, []).append(value)
    return {term: {s: float(np.mean(v)) for s, v in stages.items()} for term, stages in merged.items()}


def _measured_norms(distiller: Distiller, batch: dict) -> dict[str, dict]:
    """One extra forward on `batch`: each term's gradient norm at the apprentice's features."""
    with recording_features(distiller.apprentice) as features:
        losses = distiller(batch)
    return feature_gradient_norms(losses, features[0])


def measure_without_training(
    distiller: Distiller, cfg: CfgNode, steps: int, measure_every: int
) -> tuple[dict, list[float]]:
    """`train_and_measure` for a finished run: the same measures over the first `steps` training batches
    (in order, unshuffled), with the weights left as they are: no optimizer step, and the buffers that a
    training-mode forward moves (BatchNorm statistics) are put back afterwards."""
    dataset = build_dataset(
        cfg, cfg.DATASETS.TRAIN_SPLIT, distiller.data_image_size(), distiller.queue_length
    )
    buffers = {name: value.clone() for name, value in distiller.named_buffers()}
    records, focal_per_sample = [], []
    was_training = distiller.training
    distiller.train()
    try:
        for step in tqdm(range(min(steps, len(dataset))), desc="measure"):
            batch = collate_samples([dataset[step]])
            if step % measure_every == 0:
                records.append(_measured_norms(distiller, batch))
            with torch.no_grad():
                losses = distiller(batch)
            if "num_focal_queries" in losses:
                focal_per_sample.append(losses["num_focal_queries"].item())
    finally:
        distiller.train(was_training)
        with torch.no_grad():
            for name, value in distiller.named_buffers():
                value.copy_(buffers[name])
    return (_mean_norms(records) if records else {}), focal_per_sample


def train_and_measure(
    run: TrainingRun, cfg: CfgNode, steps: int, measure_every: int
) -> tuple[dict, list[float]]:
    """Train `steps` steps; every `measure_every`-th, first the gradient norm of each term at the
    apprentice's features (an extra forward on the same batch). Returns the mean norms and the focal
    queries per sample of every step."""
    distiller: Distiller = run.accelerator.unwrap_model(run.model)
    stream = batches(run, cfg)
    records, focal_per_sample = [], []
    run.model.train()
    for step in tqdm(range(steps), desc="distil + measure"):
        batch = next(stream)
        if step % measure_every == 0:
            records.append(_measured_norms(distiller, batch))
        losses, _ = training_step(run, batch, cfg)
        if "num_focal_queries" in losses:
            focal_per_sample.append(losses["num_focal_queries"].item() / len(batch["gt_boxes"]))
    return (_mean_norms(records) if records else {}), focal_per_sample


def measure_head(distiller: Distiller, cfg: CfgNode, samples: int) -> tuple[dict, dict]:
    """Head measures over validation samples, and one sample's arrays for the figure (in eval mode,
    without gradients; the distiller's mode is restored afterwards)."""
    with evaluating(distiller):
        return _measure_head(distiller, cfg, samples)


def _measure_head(distiller: Distiller, cfg: CfgNode, samples: int) -> tuple[dict, dict]:
    dataset = build_dataset(cfg, cfg.DATASETS.TEST_SPLIT, distiller.data_image_size(), distiller.queue_length)
    on = total = 0
    coverage: dict[str, list[float]] = {}
    behind, background, focal_counts = [], [], []
    example: dict = {}
    pairing = distiller.pairing
    pairs = list(pairing.pv_pairs)
    if distiller.expert_shapes["bev"] is not None and distiller.apprentice_shapes["bev"] is not None:
        pairs.append(pairing.bev_pair())
    for index in tqdm(range(min(samples, len(dataset))), desc="head measures"):
        batch = collate_samples([dataset[index]])
        expert = distiller.expert_features(batch)
        apprentice = distiller.apprentice.extract_features(batch)
        if expert.bev is not None:
            a, b = ray_artifact_index(expert.bev, batch["gt_boxes"], expert.bev_extent, seed=index)
            behind.append(a)
            background.append(b)
        if distiller.head is None:
            continue
        head, focal, matches = distiller.run_head(expert, batch, {})
        focal_counts.append(int(focal.sum()))
        hit, count = qfd_points_on_objects(
            head, focal, matches, batch["gt_boxes"], distiller.head.pc_range, expert.geometry
        )
        on, total = on + hit, total + count
        boxes = focal_boxes(head.box_code[-1], focal)
        for pair in pairs:
            coverage.setdefault(pair.name, []).append(float(pair.box_masks(boxes, apprentice).float().mean()))
        if not example and focal.any() and head.visible is None:
            example = {
                "bev": expert.bev[0],  # (C, H, W)
                "extent": expert.bev_extent,
                "gt": batch["gt_boxes"][0].numpy(),
                "points": head.locations[0][focal[0]].reshape(-1, 2).numpy(),  # (N_f*M*K, 2)
            }
    measures = {
        "qfd_points_on_objects": on / total if total else None,
        "qfd_points_counted": total,
        "focal_queries_per_val_sample": float(np.mean(focal_counts)) if focal_counts else None,
        "focal_mask_coverage": {name: float(np.mean(v)) for name, v in coverage.items()},
        "expert_bev_activation_behind_objects": float(np.mean(behind)) if behind else None,
        "expert_bev_activation_background": float(np.mean(background)) if background else None,
        "ray_artifact_index": float(np.mean(behind) / np.mean(background)) if behind else None,
    }
    return measures, example
