"""Streaming samples through Hugging Face `datasets`, from a dataroot or from exported Parquet shards.

Both sources yield the same rows (`NuScenesReader.read_row`), sharded one scene per shard so that
DataLoader workers and Accelerate ranks (`split_dataset_by_node`) each get whole, disjoint scenes.
The Parquet shards are what one would `push_to_hub` as a dataset repository.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
from datasets import Features, Value
from datasets import Sequence as HFSequence
from datasets.distributed import split_dataset_by_node
from tqdm import tqdm

from fd3d.data.manifest import check_local_split, shard_entry, write_manifest
from fd3d.data.nuscenes import NuScenesReader, decode_row

_MATRIX = HFSequence(HFSequence(Value("float64")))
_MATRICES = HFSequence(_MATRIX)

SAMPLE_FEATURES = Features(
    {
        "sample_token": Value("string"),
        "scene_token": Value("string"),
        "scene_name": Value("string"),
        "timestamp": Value("int64"),
        "prev_token": Value("string"),
        "lidar2ego": _MATRIX,
        "ego2global": _MATRIX,
        "prev_lidar2global": _MATRIX,
        "cam_names": HFSequence(Value("string")),
        "images": HFSequence(datasets.Image(decode=False)),
        "cam_intrinsics": _MATRICES,
        "cam_sensor2ego": _MATRICES,
        "cam_ego2global": _MATRICES,
        "cam_timestamps": HFSequence(Value("int64")),
        "gt_boxes": _MATRIX,
        "gt_names": HFSequence(Value("string")),
    }
)

SPLITS_OF_VERSION = {"v1.0-mini": ("mini_train", "mini_val"), "v1.0-trainval": ("train", "val")}


def _rows_of_scenes(dataroot: str, version: str, scene_names: list[str]) -> Iterator[dict]:
    reader = NuScenesReader(dataroot, version)
    for token in reader.sample_tokens(scene_names=scene_names):
        yield reader.read_row(token)


def stream_from_dataroot(dataroot: str | os.PathLike, version: str, split: str) -> datasets.IterableDataset:
    """An IterableDataset over one split of a dataroot, one shard per scene (time order inside)."""
    scene_names = NuScenesReader(dataroot, version).scene_names(split)
    if not scene_names:
        raise ValueError(f"split {split!r} has no scenes in {dataroot} ({version})")
    return datasets.IterableDataset.from_generator(
        _rows_of_scenes,
        features=SAMPLE_FEATURES,
        gen_kwargs={"dataroot": str(dataroot), "version": version, "scene_names": scene_names},
    )


def shard_files(shard_root: str | os.PathLike, split: str) -> list[str]:
    files = sorted(str(p) for p in (Path(shard_root) / "data" / split).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"no Parquet shards for split {split!r} under {Path(shard_root) / 'data' / split}"
        )
    return files


def stream_from_shards(shard_root: str | os.PathLike, split: str) -> datasets.IterableDataset:
    """The same rows streamed back from `export_parquet_shards` output (or a Hub dataset repo)."""
    files = shard_files(shard_root, split)
    check_local_split(shard_root, split, files)
    stream = datasets.load_dataset("parquet", data_files={split: files}, split=split, streaming=True)
    return stream.cast(SAMPLE_FEATURES)


def for_rank(
    stream: datasets.IterableDataset, rank: int, world_size: int, seed: int | None = None, epoch: int = 0
) -> datasets.IterableDataset:
    """This rank's disjoint part of a stream, optionally shuffled deterministically per epoch.

    Shard order and a small buffer are shuffled from (seed, epoch), so every epoch differs and every run
    with the same seed repeats. Shards are read one at a time (`max_buffer_input_shards=1`): reading
    several at once in `datasets` threads costs a fixed 5 s pause at the end of every pass over Parquet.
    """
    part = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    if seed is not None:
        part = part.shuffle(seed=seed, buffer_size=16, max_buffer_input_shards=1)
        part.set_epoch(epoch)
    return part


def decoded(
    stream: datasets.IterableDataset,
    image_size: tuple[int, int] | None = None,
    pc_range: Sequence[float] | None = None,
    classes: Sequence[str] | None = None,
) -> datasets.IterableDataset:
    """Rows → model-ready arrays (see `decode_row`), lazily as the stream is read."""
    kwargs = {"image_size": image_size, "pc_range": pc_range}
    if classes is not None:
        kwargs["classes"] = tuple(classes)
    return stream.map(lambda row: decode_row(row, **kwargs), remove_columns=list(SAMPLE_FEATURES))


def export_parquet_shards(
    dataroot: str | os.PathLike, version: str, out_dir: str | os.PathLike, progress: bool = True
) -> dict[str, int]:
    """Write `out_dir/data/<split>/<scene>.parquet` for each split of the version; returns rows per split.

    All or nothing: shards are written into a staging folder beside `out_dir` that replaces `out_dir`'s
    `data/` only when every scene was written, so an export that fails half-way (a missing image in the
    last scene) never leaves a folder that streams as a complete but smaller dataset.
    """
    if version not in SPLITS_OF_VERSION:
        raise ValueError(f"no export for version {version!r}; valid: {list(SPLITS_OF_VERSION)}")
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    # the staging folder lives beside OUT, never inside it, so a killed export leaves nothing in OUT that
    # an upload of OUT would push; leftovers of killed exports are removed first
    for stale in [*out.parent.glob(f".{out.name}.export-*"), *out.glob(".export-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        counts = _write_shards(NuScenesReader(dataroot, version), version, staging, progress)
        target = out / "data"
        if target.exists():
            target.rename(staging / "previous")  # removed with the staging folder below
        (staging / "data").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def _write_shards(reader: NuScenesReader, version: str, out_dir: Path, progress: bool) -> dict[str, int]:
    jobs = [(split, name) for split in SPLITS_OF_VERSION[version] for name in reader.scene_names(split)]
    counts = dict.fromkeys(SPLITS_OF_VERSION[version], 0)
    entries: dict[str, dict[str, dict]] = {split: {} for split in SPLITS_OF_VERSION[version]}
    bars_were_enabled = not datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # one bar per shard would drown ours
    try:
        for split, scene_name in tqdm(jobs, desc="parquet shards", unit="scene", disable=not progress):
            split_dir = Path(out_dir) / "data" / split
            split_dir.mkdir(parents=True, exist_ok=True)
            tokens = reader.sample_tokens(scene_names=[scene_name])
            rows = [reader.read_row(t) for t in tokens]
            shard = split_dir / f"{scene_name}.parquet"
            datasets.Dataset.from_list(rows, features=SAMPLE_FEATURES).to_parquet(str(shard))
            entries[split][scene_name] = shard_entry(shard, tokens)
            counts[split] += len(rows)
    finally:
        if bars_were_enabled:
            datasets.enable_progress_bars()
    write_manifest(Path(out_dir) / "data", version, entries)
    return counts
