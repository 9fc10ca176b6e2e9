"""Defects 4, 10 and 12 of the reliability drill: shards are checked against their manifest (content and
file list) and against the dataroot that scores them, a truncated shard and an unreachable Hub are named
errors, and a killed export leaves nothing inside its output folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fd3d.config import ConfigError
from fd3d.data import hf
from fd3d.data.hf import export_parquet_shards
from fd3d.data.manifest import MANIFEST, ShardError
from fd3d.data.stream import shard_files_of
from fd3d.engine.trainer import train
from tests.engine.test_trainer import APPRENTICE, config


@pytest.fixture(scope="module")
def exported(mini_dataroot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    export_parquet_shards(mini_dataroot, "v1.0-mini", out, progress=False)
    return out


@pytest.fixture
def shards(exported, tmp_path) -> Path:
    """A private copy a test may damage."""
    return Path(shutil.copytree(exported, tmp_path / "shards"))


def _one_shard(shards: Path, split: str = "mini_val") -> Path:
    return sorted((shards / "data" / split).glob("*.parquet"))[0]


def test_the_export_writes_a_manifest_of_every_shard(shards, mini_dataroot):
    manifest = json.loads((shards / "data" / MANIFEST).read_text())
    assert manifest["version"] == "v1.0-mini"
    entries = manifest["splits"]["mini_val"]
    assert {name for name in entries} == {p.stem for p in (shards / "data" / "mini_val").glob("*.parquet")}
    assert sum(entry["rows"] for entry in entries.values()) == 6


def test_a_flipped_byte_in_a_shard_is_named(shards):
    shard = _one_shard(shards)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the image bytes: Parquet still opens
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"shard {shard} has changed since it was exported"):
        shard_files_of(str(shards), "mini_val")


def test_a_truncated_shard_is_named(shards):
    shard = _one_shard(shards)
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(ShardError, match=rf"shard {shard} has changed.*truncated or corrupt"):
        shard_files_of(str(shards), "mini_val")


def test_a_shard_the_manifest_does_not_list_is_refused(shards):
    extra = _one_shard(shards).with_name("scene-9999.parquet")
    shutil.copy(_one_shard(shards), extra)
    with pytest.raises(ShardError, match=r"not listed \['scene-9999'\]"):
        shard_files_of(str(shards), "mini_val")


def test_shards_of_another_dataset_are_refused_before_training(shards, tmp_path):
    """Same scene names and file names, other samples: another synthetic dataset's export."""
    from fd3d.data.synthetic import SyntheticConfig, generate
    from tests.conftest import SMALL_CONFIG

    other = tmp_path / "other"
    generate(other, SyntheticConfig(workers=1, **{**SMALL_CONFIG, "seed": 99}), progress=False)
    cfg = config(
        APPRENTICE, other, tmp_path / "out", "DATASETS.SOURCE", "parquet", "DATASETS.SHARDS", str(shards)
    )
    with pytest.raises(ConfigError, match=r"does not hold the 'mini_val' samples of DATASETS.DATAROOT"):
        train(cfg)
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_an_unreachable_hub_is_named_with_its_endpoint(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(
        ShardError, match=r"cannot read dataset 'org/no-such' from the Hub at http://127.0.0.1:9"
    ):
        shard_files_of("org/no-such", "mini_val")


def test_a_killed_export_leaves_nothing_inside_the_output_folder(mini_dataroot, tmp_path, monkeypatch):
    out = tmp_path / "export"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what a kill between two shards looks like from inside

    monkeypatch.setattr(hf, "write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        export_parquet_shards(mini_dataroot, "v1.0-mini", out, progress=False)
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    export_parquet_shards(mini_dataroot, "v1.0-mini", out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["data"]
    assert not list(tmp_path.glob(".export.export-*"))
