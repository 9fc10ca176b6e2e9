"""What a config trains: a detector alone, or an apprentice inside a distiller; and the data it reads."""

from __future__ import annotations

import torch
from fvcore.common.config import CfgNode
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.distill import Distiller
from fd3d.modeling import build_model


def build_training_model(cfg: CfgNode) -> nn.Module:
    """A `Distiller` when `DISTILL.LOSSES` names any loss, else the detector of `MODEL.META_ARCHITECTURE`."""
    return Distiller(cfg) if cfg.DISTILL.LOSSES else build_model(cfg)


def detector_of(model: nn.Module) -> nn.Module:
    """The detector being trained: the apprentice of a distiller, or the model itself."""
    return model.apprentice if isinstance(model, Distiller) else model


def data_image_size(model: nn.Module, cfg: CfgNode) -> tuple[int, int]:
    """Images are decoded once at the largest input size any model of the job reads (the expert's when
    distilling); each detector resizes to its own."""
    sizes = [tuple(cfg.INPUT.IMAGE_SIZE)]
    if isinstance(model, Distiller):
        sizes.append(tuple(model.expert_cfg.INPUT.IMAGE_SIZE))
    return max(sizes, key=lambda hw: hw[0] * hw[1])


def build_dataset(cfg: CfgNode, split: str, image_size: tuple[int, int], queue_length: int) -> Dataset:
    return NuScenesDataset(
        cfg.DATASETS.DATAROOT,
        cfg.DATASETS.VERSION,
        split,
        image_size=image_size,
        pc_range=cfg.MODEL.POINT_CLOUD_RANGE,
        classes=cfg.DATASETS.CLASSES,
        queue_length=queue_length,
    )


def build_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int = 0
) -> DataLoader:
    """A plain DataLoader; `accelerator.prepare` shards it so every process reads disjoint samples.

    It owns its random generator: starting an epoch must not draw from the global RNG, or a resumed run
    would shift the random masks of distillation against an uninterrupted one.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_samples,
        drop_last=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )
