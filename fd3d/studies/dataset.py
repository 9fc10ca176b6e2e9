"""A study's data: a synthetic nuScenes-format set generated once, and the overrides that point runs at it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fd3d.data.synthetic import SyntheticConfig, generate


def splits(version: str) -> tuple[str, str]:
    """(train, val) split names of the devkit for `version`: the mini ones for v1.0-mini."""
    return ("mini_train", "mini_val") if version.endswith("mini") else ("train", "val")


def data_overrides(dataroot: Path, version: str) -> list[str]:
    """The KEY VALUE overrides that train on `dataroot`'s train split and score on its val split."""
    train_split, val_split = splits(version)
    return ["DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", version,
            "DATASETS.TRAIN_SPLIT", train_split, "DATASETS.TEST_SPLIT", val_split]  # fmt: skip


def make_data(dataroot: Path, plan: Mapping, seed: int) -> None:
    """Generate the plan's data in `dataroot` (a `Plan` as a dict), unless it is there: every run of a
    study, over all its sittings, trains and scores on the same scenes."""
    if (dataroot / plan["version"] / "scene.json").is_file():
        print(f"[data] reusing {dataroot}")
        return
    config = SyntheticConfig(
        version=plan["version"], scenes=plan["scenes"], val_scenes=plan["val_scenes"],
        samples_per_scene=plan["samples"], image_size=(224, 400), seed=seed, workers=2,
    )  # fmt: skip
    generate(dataroot, config)
