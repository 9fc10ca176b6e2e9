"""Defects 2, 3 and 11 of the reliability drill: a bad test split is named before step 1, a failed final
evaluation leaves a usable model and says where, an image of the wrong size is refused instead of giving
wrong camera geometry, and out-of-range model keys are named before anything is built."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from fd3d.config import ConfigError
from fd3d.data.nuscenes import DatasetError, NuScenesReader
from fd3d.engine import trainer
from fd3d.engine.trainer import FinalEvaluationError, train
from fd3d.hub import from_pretrained
from tests.engine.test_trainer import APPRENTICE, config


def _val_image(dataroot: Path) -> Path:
    reader = NuScenesReader(dataroot, "v1.0-mini")
    token = reader.sample_tokens("mini_val")[0]
    sample = reader.get("sample", token)
    return dataroot / reader.get("sample_data", sample["data"]["CAM_FRONT"])["filename"]


def _no_training(monkeypatch) -> list[int]:
    """Record whether training starts: prepare_training is never reached when the check comes first."""
    started: list[int] = []
    real = trainer.prepare_training

    def prepare(*args, **kwargs):
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "prepare_training", prepare)
    return started


def test_a_misspelt_test_split_is_named_before_the_first_step(mini_dataroot, tmp_path, monkeypatch):
    started = _no_training(monkeypatch)
    cfg = config(APPRENTICE, mini_dataroot, tmp_path, "DATASETS.TEST_SPLIT", "mini_vall")
    with pytest.raises(ConfigError, match=r"DATASETS.TEST_SPLIT 'mini_vall' cannot be read.*unknown split"):
        train(cfg)
    assert not started and not (tmp_path / "checkpoints").exists()


def test_a_missing_val_image_is_named_before_the_first_step(mini_copy, tmp_path, monkeypatch):
    image = _val_image(mini_copy)
    image.unlink()
    started = _no_training(monkeypatch)
    with pytest.raises(
        ConfigError, match=rf"(?s)TEST_SPLIT 'mini_val'.*image file missing: {re.escape(str(image))}"
    ):
        train(config(APPRENTICE, mini_copy, tmp_path / "out"))
    assert not started


def test_an_image_of_another_size_than_its_table_is_refused(mini_copy, tmp_path):
    """Stored 100x56 where sample_data says 200x112: the intrinsics would be scaled by 2 from the wrong
    size (lidar2img halved); the reader names the file and both sizes instead."""
    image = _val_image(mini_copy)
    with Image.open(image) as pil:
        assert pil.size == (200, 112)
        pil.resize((100, 56)).save(image)
    reader = NuScenesReader(mini_copy, "v1.0-mini")
    token = reader.sample_tokens("mini_val")[0]
    with pytest.raises(DatasetError, match=r"is 100x56 .* says 200x112"):
        reader.read_row(token)
    with pytest.raises(ConfigError, match=r"(?s)TEST_SPLIT 'mini_val'.*is 100x56"):
        train(config(APPRENTICE, mini_copy, tmp_path / "out"))


def test_a_failed_final_evaluation_keeps_the_trained_model_and_says_where(
    mini_dataroot, tmp_path, monkeypatch
):
    def broken_evaluation(detector, cfg, accelerator, name):
        if name == "eval_final":
            raise ValueError("all predictions are empty")
        return None

    monkeypatch.setattr(trainer, "_evaluate_into", broken_evaluation)
    with pytest.raises(FinalEvaluationError, match=r"model is saved in .*model.*all predictions are empty"):
        train(config(APPRENTICE, mini_dataroot, tmp_path))
    model = from_pretrained(tmp_path / "model")  # loads strictly: a usable model
    assert model.image_size == (112, 200)
    assert json.loads((tmp_path / "model" / "config.json").read_text())


@pytest.mark.parametrize(
    ("key", "value"), [("MODEL.HEAD.NUM_QUERIES", "0"), ("INPUT.IMAGE_SIZE", "[-112, 200]")]
)
def test_out_of_range_model_keys_are_named_before_anything_is_built(mini_dataroot, tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"{key}="):
        train(config(APPRENTICE, mini_dataroot, tmp_path, key, value))
