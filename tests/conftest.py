"""Shared fixtures: one small synthetic dataroot per test session (generated in a few seconds)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fd3d.data.synthetic import SyntheticConfig, generate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
SMALL_CONFIG = {
    "version": "v1.0-mini",
    "scenes": 4,
    "samples_per_scene": 3,
    "image_size": (112, 200),
    "seed": 7,
}


@pytest.fixture(scope="session")
def mini_dataroot(tmp_path_factory) -> Path:
    """4 scenes (scene-0103 and scene-0916 are mini_val) x 3 keyframes, 112x200 images. Read-only."""
    root = tmp_path_factory.mktemp("synthetic") / "mini"
    generate(root, SyntheticConfig(workers=2, **SMALL_CONFIG), progress=False)
    return root


@pytest.fixture
def mini_copy(mini_dataroot, tmp_path) -> Path:
    """A private copy of the small dataroot that a test may damage."""
    target = tmp_path / "mini"
    shutil.copytree(mini_dataroot, target)
    return target


@pytest.fixture(scope="session")
def overfit_dataroot(tmp_path_factory) -> Path:
    """The two mini_val scenes only, two keyframes each (4 samples), 112x200 images. Read-only."""
    root = tmp_path_factory.mktemp("synthetic") / "overfit"
    config = SyntheticConfig(
        version="v1.0-mini", scenes=2, samples_per_scene=2, image_size=(112, 200), seed=3, workers=2
    )
    generate(root, config, progress=False)
    return root


@pytest.fixture
def second_rename_fails(monkeypatch) -> list[tuple[str, str]]:
    """os.replace fails on its second call (the old folder is aside, the new one not yet in place);
    returns the (source, destination) names of every call."""
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:
            raise OSError("rename interrupted")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls
