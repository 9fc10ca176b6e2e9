"""The data a config trains and evaluates on: a map-style dataset or a stream of scene shards; its loader."""

from __future__ import annotations

import os

import torch
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Dataset

from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.data.stream import SceneStream, shard_files_of
from fd3d.errors import ConfigError

DATA_SOURCES = ("dataroot", "parquet", "hub")


def build_dataset(
    cfg: CfgNode,
    split: str,
    image_size: tuple[int, int],
    queue_length: int,
    shuffle: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> Dataset:
    """The split from DATASETS.SOURCE: a map-style `NuScenesDataset`, or a `SceneStream` of shards that is
    already this process's part (`rank` of `world_size`), shuffled per seed and epoch when `shuffle`."""
    source = cfg.DATASETS.SOURCE
    if source not in DATA_SOURCES:
        raise ConfigError(f"DATASETS.SOURCE must be one of {DATA_SOURCES}, got {source!r}")
    if source != "dataroot":
        if not cfg.DATASETS.SHARDS:
            raise ConfigError(
                f"DATASETS.SOURCE {source!r} needs DATASETS.SHARDS (shard folder or dataset repo id)"
            )
        if source == "parquet" and not os.path.isdir(cfg.DATASETS.SHARDS):
            raise ConfigError(
                f"DATASETS.SHARDS {cfg.DATASETS.SHARDS!r} is not a folder (SOURCE 'hub' reads repo ids)"
            )
        files = shard_files_of(cfg.DATASETS.SHARDS, split, cfg.DATASETS.REVISION or None)
        return SceneStream(
            files,
            image_size,
            cfg.MODEL.POINT_CLOUD_RANGE,
            cfg.DATASETS.CLASSES,
            queue_length,
            shuffle=shuffle,
            seed=cfg.SEED,
            rank=rank,
            world_size=world_size,
            resize=cfg.INPUT.RESIZE,
        )
    return NuScenesDataset(
        cfg.DATASETS.DATAROOT,
        cfg.DATASETS.VERSION,
        split,
        image_size=image_size,
        pc_range=cfg.MODEL.POINT_CLOUD_RANGE,
        classes=cfg.DATASETS.CLASSES,
        queue_length=queue_length,
        resize=cfg.INPUT.RESIZE,
    )


def build_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int = 0
) -> DataLoader:
    """A plain DataLoader; `accelerator.prepare` shards it so every process reads disjoint samples.

    It owns its random generator: starting an epoch must not draw from the global RNG, or a resumed run
    would shift the random masks of distillation against an uninterrupted one. A `SceneStream` shuffles
    and splits itself (no sampler).
    """
    if isinstance(dataset, SceneStream):
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_samples,
            drop_last=shuffle,
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_samples,
        drop_last=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )
