"""Streaming through `datasets`: the dataroot and its Parquet shards give the same samples, and ranks
get disjoint, complete, deterministically shuffled parts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fd3d.data.hf import decoded, export_parquet_shards, for_rank, stream_from_dataroot, stream_from_shards
from fd3d.data.nuscenes import NuScenesReader, decode_row
from tests.conftest import PC_RANGE


@pytest.fixture(scope="module")
def shard_root(mini_dataroot, tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    counts = export_parquet_shards(mini_dataroot, "v1.0-mini", root, progress=False)
    assert counts == {"mini_train": 6, "mini_val": 6}
    return root


@pytest.mark.parametrize("split", ["mini_train", "mini_val"])
def test_shards_stream_the_dataroot_rows(mini_dataroot, shard_root, split):
    from_root = list(stream_from_dataroot(mini_dataroot, "v1.0-mini", split))
    from_shards = list(stream_from_shards(shard_root, split))
    reader = NuScenesReader(mini_dataroot, "v1.0-mini")
    assert [r["sample_token"] for r in from_root] == reader.sample_tokens(split)
    assert from_root == from_shards
    assert from_root[0]["images"][0]["bytes"][:2] == b"\xff\xd8", "images stay encoded JPEG bytes"


def test_ranks_get_disjoint_complete_parts(shard_root):
    stream = stream_from_shards(shard_root, "mini_train")
    everything = [r["sample_token"] for r in stream]
    parts = [[r["sample_token"] for r in for_rank(stream, rank, 2, seed=0)] for rank in range(2)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(everything)
    assert len(parts[0]) == len(parts[1]) == 3


def test_shuffle_is_deterministic_per_epoch(shard_root):
    stream = stream_from_shards(shard_root, "mini_train")

    def order(seed, epoch):
        return [r["sample_token"] for r in for_rank(stream, 0, 1, seed=seed, epoch=epoch)]

    assert order(0, 0) == order(0, 0)
    assert sorted(order(0, 0)) == sorted(order(0, 1))
    assert len({tuple(order(0, epoch)) for epoch in range(4)}) > 1, "epochs should not all repeat one order"


def test_decoded_stream_equals_map_style_decode(mini_dataroot, shard_root):
    streamed = next(iter(decoded(stream_from_shards(shard_root, "mini_val"), (56, 100), PC_RANGE)))
    reader = NuScenesReader(mini_dataroot, "v1.0-mini")
    direct = decode_row(reader.read_row(streamed["sample_token"]), (56, 100), PC_RANGE)
    assert streamed.keys() == direct.keys()
    for key, value in direct.items():
        np.testing.assert_array_equal(np.asarray(streamed[key]), np.asarray(value), err_msg=key)


def test_missing_shards_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Parquet shards for split 'val'"):
        stream_from_shards(tmp_path, "val")


def test_an_export_that_fails_half_way_leaves_no_partial_dataset(mini_copy, tmp_path):
    out = tmp_path / "shards"
    export_parquet_shards(mini_copy, "v1.0-mini", out, progress=False)
    before = sorted(p.relative_to(out) for p in (out / "data").rglob("*.parquet"))
    image = sorted((mini_copy / "samples" / "CAM_BACK").iterdir())[-1]
    image.unlink()  # a sample of some scene now misses a camera image
    with pytest.raises(Exception, match=re.escape(image.name)):
        export_parquet_shards(mini_copy, "v1.0-mini", out, progress=False)
    assert sorted(p.relative_to(out) for p in (out / "data").rglob("*.parquet")) == before  # the old export
    assert [p.name for p in out.iterdir()] == ["data"]  # no staging folder left behind
