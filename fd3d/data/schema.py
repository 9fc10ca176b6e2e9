"""Names fixed by the nuScenes v1.0 schema, and the marker of a synthetic dataroot."""

from __future__ import annotations

import json
import os
from pathlib import Path

TABLE_NAMES: tuple[str, ...] = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
VERSIONS: tuple[str, ...] = ("v1.0-mini", "v1.0-trainval", "v1.0-test")

# Written by the synthetic generator at the dataroot's top (beside the version folders, not a nuScenes
# table): model cards then say their metrics are on synthetic data, not on nuScenes.
SYNTHETIC_MARKER = "fd3d_synthetic.json"
REAL_NUSCENES = "nuScenes"


def dataset_name(dataroot: str | os.PathLike) -> str:
    """What a model card calls the data of `dataroot`: nuScenes, or the synthetic generator's data."""
    marker = Path(dataroot) / SYNTHETIC_MARKER
    if not marker.is_file():
        return REAL_NUSCENES
    seed = json.loads(marker.read_text()).get("config", {}).get("seed")
    return f"synthetic nuScenes-format data (fd3d generator, seed {seed}), not nuScenes"
