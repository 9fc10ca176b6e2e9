"""Fixtures for tests against the local Hub (tests/hub/server.py): the server, a client pointed at it,
a saved model folder and a dataset repository of Parquet shards.

`huggingface_hub` reads HF_ENDPOINT, HF_HUB_OFFLINE, the cache and token paths once, at import, into
`huggingface_hub.constants` (and `datasets` into `datasets.config`); every call then reads those module
attributes. So `hub_server` patches the attributes for the test, and sets the environment variables too
for subprocesses (the CLI tests). fd3d needs nothing: `HfApi()` and `snapshot_download` without an
`endpoint=` follow `constants.ENDPOINT`, as they follow HF_ENDPOINT for a user.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest
import torch
from huggingface_hub import HfApi, HfFileSystem, constants, file_download

from fd3d.config import load_config
from fd3d.data.hf import export_parquet_shards
from fd3d.hub import save_pretrained
from fd3d.modeling import build_model
from tests.hub.server import LocalHub

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/


@pytest.fixture(scope="session")
def _local_hub() -> Iterator[LocalHub]:
    """One server for the session; it stops when the session ends."""
    hub = LocalHub()
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def hub_server(_local_hub: LocalHub, monkeypatch, tmp_path) -> Iterator[LocalHub]:
    """The local Hub, empty, with both clients pointed at it, online, a fresh cache and a valid token."""
    hub = _local_hub
    hub.reset()
    home = tmp_path / "hf_home"
    cache = home / "hub"
    environment = {
        "HF_ENDPOINT": hub.url,
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "HF_TOKEN": hub.token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for name in ("HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_OIDC_ID_TOKEN", "HUGGINGFACE_CO_STAGING"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        "HF_HUB_OFFLINE": False,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True,
    }.items():
        monkeypatch.setattr(constants, name, value)
    for name, value in {
        "HF_ENDPOINT": hub.url,
        "HUB_DATASETS_URL": hub.url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_DATASETS_CACHE": home / "datasets",
        "HF_UPDATE_DOWNLOAD_COUNTS": False,
    }.items():
        monkeypatch.setattr(datasets.config, name, value)
    HfFileSystem.clear_instance_cache()  # an instance remembers listings of an earlier test's repos
    yield hub
    HfFileSystem.clear_instance_cache()
    hub.reset()


@pytest.fixture
def no_retry_pause(monkeypatch):
    """The client waits 1 s before resuming a broken download (5 tries); skip the wait, not the retries."""

    class _Time:
        @staticmethod
        def sleep(_seconds: float) -> None:
            return None

    monkeypatch.setattr(file_download, "time", _Time)


# --------------------------------------------------------------------------------------------- models


@pytest.fixture(scope="session")
def cpu_cfg():
    return load_config(PROJECTS / "DETR3D/configs/cpu_apprentice.yaml")


def build_cpu_model(cfg, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg).eval()


@pytest.fixture(scope="session")
def _saved_models(cpu_cfg, tmp_path_factory) -> tuple[Path, Path]:
    """Two model folders of the CPU apprentice with different weights (seeds 0 and 1). Read-only."""
    root = tmp_path_factory.mktemp("hub_models")
    first = save_pretrained(build_cpu_model(cpu_cfg, 0), cpu_cfg, root / "v1")
    second = save_pretrained(build_cpu_model(cpu_cfg, 1), cpu_cfg, root / "v2")
    return first, second


@pytest.fixture
def model_folders(_saved_models, tmp_path) -> tuple[Path, Path]:
    """Private copies of the two model folders (a test may push, damage or re-save them)."""
    copies = []
    for folder in _saved_models:
        target = tmp_path / "models" / folder.name
        shutil.copytree(folder, target)
        copies.append(target)
    return copies[0], copies[1]


# ------------------------------------------------------------------------------------------- datasets


@pytest.fixture(scope="session")
def mini_shards(mini_dataroot, tmp_path_factory) -> Path:
    """`export_parquet_shards` of the session's small dataroot: data/<split>/<scene>.parquet. Read-only."""
    root = tmp_path_factory.mktemp("hub_shards")
    export_parquet_shards(mini_dataroot, "v1.0-mini", root, progress=False)
    return root


def upload_shard_folder(
    shard_root: str | Path, repo_id: str = "fd3d-test/mini-shards", *, private: bool = False
) -> str:
    """Create the dataset repo `repo_id` on the Hub in use (HF_ENDPOINT) and upload a shard folder to it.

    Returns the repo id; the shards are then at `hf://datasets/<repo_id>/data/<split>/*.parquet`.
    """
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(shard_root), repo_id=repo_id, repo_type="dataset", commit_message="shards"
    )
    return repo_id


@pytest.fixture
def hub_dataset_repo(hub_server, mini_shards) -> str:
    """The id of a dataset repo on the local Hub holding `mini_shards` (for streaming tests)."""
    return upload_shard_folder(mini_shards)
