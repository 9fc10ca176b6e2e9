"""A dataset repository of Parquet shards: uploaded with `HfApi.upload_folder`, streamed back by `datasets`
through `hf://` paths, row for row equal to the local shards."""

from __future__ import annotations

import datasets
from huggingface_hub import HfApi

from fd3d.data.hf import SAMPLE_FEATURES, stream_from_shards
from tests.hub.conftest import upload_shard_folder


def test_uploaded_shards_are_the_local_files(hub_server, mini_shards):
    repo_id = upload_shard_folder(mini_shards, "org/mini")
    local = {
        path.relative_to(mini_shards).as_posix(): path.read_bytes() for path in mini_shards.rglob("*.parquet")
    }
    stored = hub_server.files(repo_id, repo_type="dataset")
    assert {path: blob.data for path, blob in stored.items() if path.endswith(".parquet")} == local
    assert all(stored[path].lfs for path in local)
    listed = HfApi().list_repo_files(repo_id, repo_type="dataset")
    assert sorted(listed) == sorted([".gitattributes", "data/manifest.json", *local])


def test_dataset_repo_streams_the_rows_of_the_local_shards(hub_dataset_repo, mini_shards):
    pattern = f"hf://datasets/{hub_dataset_repo}/data/{{split}}/*.parquet"
    splits = ("mini_train", "mini_val")
    streams = datasets.load_dataset(
        "parquet", data_files={split: pattern.format(split=split) for split in splits}, streaming=True
    )
    for split in splits:
        assert isinstance(streams[split], datasets.IterableDataset)
        remote = list(streams[split].cast(SAMPLE_FEATURES))
        assert remote == list(stream_from_shards(mini_shards, split)), split
        assert len(remote) == 6
