"""`import fd3d`: the front door's names, a detector that saves itself and loads back, the shipped catalog."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import torch

import fd3d
from fd3d.config import ConfigError, config_to_dict, distill_config
from fd3d.hub import CONFIG_NAME

ROOT = Path(__file__).resolve().parents[1]


def test_the_front_door_names_what_it_gives():
    for name in (
        "load_config",
        "build_model",
        "from_pretrained",
        "Distiller",
        "train",
        "evaluate",
        "list_configs",
    ):
        assert callable(getattr(fd3d, name)), name
    assert set(fd3d.__all__) >= {"__version__", "Distiller", "list_configs"}
    with pytest.raises(AttributeError, match="the API"):
        fd3d.no_such_thing  # noqa: B018


def test_one_version_for_the_package_and_its_metadata():
    assert re.fullmatch(r"\d+\.\d+\.\d+", fd3d.__version__)
    assert importlib.metadata.version("fd3d") == fd3d.__version__


def test_a_detector_saves_itself_and_loads_back_equal(tmp_path):
    cfg = fd3d.load_config(
        ROOT / "projects/DETR3D/configs/cpu_apprentice.yaml", ["MODEL.HEAD.NUM_QUERIES", "60"]
    )
    torch.manual_seed(3)
    model = fd3d.build_model(cfg).eval()
    folder = model.save_pretrained(tmp_path / "model", notes=["round trip"])
    loaded = fd3d.from_pretrained(folder)
    assert config_to_dict(loaded.config) == config_to_dict(cfg)
    assert loaded.config.MODEL.HEAD.NUM_QUERIES == 60  # the override travelled with the model
    theirs = loaded.state_dict()
    assert set(theirs) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, theirs[key]), key
    assert "round trip" in (folder / "README.md").read_text()


def test_the_model_keeps_a_frozen_copy_of_its_config():
    cfg = fd3d.load_config(ROOT / "projects/DETR3D/configs/cpu_apprentice.yaml")
    model = fd3d.build_model(cfg)
    assert model.config is not cfg and model.config.is_frozen()


def test_list_configs_finds_every_shipped_file():
    listed = fd3d.list_configs()
    assert set(listed) == {"detectors", "pairs", "methods", "zoo"}
    detectors = {path.relative_to(ROOT).as_posix() for path in listed["detectors"].values()}
    assert detectors == {p.relative_to(ROOT).as_posix() for p in ROOT.glob("projects/*/configs/*.yaml")}
    zoo = {p.parent for p in ROOT.glob("projects/*/zoo/*/" + CONFIG_NAME)}
    assert set(listed["zoo"].values()) == zoo and "BEVFormer/cpu_expert" in listed["zoo"]
    for pair in listed["pairs"]:  # every pair with every method resolves to files
        assert all(path.is_file() for path in distill_config(pair, "fd3d"))
    assert listed["methods"]["fd3d"] == distill_config(next(iter(listed["pairs"])), "fd3d")[1]


def test_list_configs_filters_and_names_its_kinds():
    assert list(fd3d.list_configs("detectors", "DETR3D/cpu_*")) == [
        "DETR3D/cpu_apprentice",
        "DETR3D/cpu_expert",
    ]
    with pytest.raises(ConfigError, match="kinds: \\['detectors', 'pairs', 'methods', 'zoo'\\]"):
        fd3d.list_configs("models")


def test_every_shipped_detector_config_loads():
    for name, path in fd3d.list_configs("detectors").items():
        if Path(path).name.startswith("Base-"):
            continue  # _BASE_ files: merged into the others, not complete on their own
        assert fd3d.load_config(path).MODEL.META_ARCHITECTURE, name
