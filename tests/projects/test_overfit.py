"""Each CPU-scale detector learns 3D boxes from the synthetic images: it overfits the 4 samples of a tiny
split in 150 steps, and the official evaluator's NDS on them rises far above the untrained model's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fd3d.config import load_config
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.evaluation.nuscenes_eval import Detections, evaluate_detections
from fd3d.modeling.registry import build_model

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/
STEPS = 150


def official_nds(model, dataset, batch, out_dir) -> float:
    model.eval()
    with torch.no_grad():
        predictions = model(batch)
    model.train()
    detections = {token: Detections(**p) for token, p in zip(batch["sample_token"], predictions, strict=True)}
    return evaluate_detections(dataset.reader, detections, "mini_val", out_dir)["NDS"]


@pytest.mark.parametrize(
    "config", ["BEVFormer/configs/cpu_apprentice.yaml", "DETR3D/configs/cpu_apprentice.yaml"]
)
def test_cpu_detector_overfits_a_tiny_split(config, overfit_dataroot, tmp_path):
    torch.manual_seed(0)
    cfg = load_config(PROJECTS / config)
    model = build_model(cfg)
    queue = cfg.MODEL.BEVFORMER.QUEUE_LENGTH if "BEVFORMER" in cfg.MODEL else 0
    dataset = NuScenesDataset(
        overfit_dataroot,
        "v1.0-mini",
        "mini_val",
        tuple(cfg.INPUT.IMAGE_SIZE),
        cfg.MODEL.POINT_CLOUD_RANGE,
        queue_length=queue,
    )
    batch = collate_samples([dataset[i] for i in range(len(dataset))])
    nds_before = official_nds(model, dataset, batch, tmp_path / "before")

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(STEPS):
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    nds_after = official_nds(model, dataset, batch, tmp_path / "after")

    assert losses[-1] < losses[0] / 8, f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    assert nds_before < 0.1
    assert nds_after > nds_before + 0.4, f"NDS {nds_before:.3f} -> {nds_after:.3f}"
