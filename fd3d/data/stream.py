"""Training samples streamed through `datasets` from Parquet shards, one scene per shard.

nuScenes trainval is ~300 GB of images: a user with the data in a bucket or a Hub dataset repo streams it.
Each shard (`tools/export_hf_dataset.py`: `data/<split>/<scene>.parquet`) is one scene in time order, so a
frame's history (BEVFormer's queue) is the frames before it in the same shard: a scene is read whole
(`datasets.load_dataset("parquet", streaming=True)`), its frames emitted in a shuffled order with their
queues built from the scene's own rows. Memory holds one scene per DataLoader worker, whatever the size of
the dataset. No history rows are duplicated in the shards: the export costs nothing extra.

Scenes are split between processes (rank) and DataLoader workers by whole scenes, disjoint; with shuffling
the scene order and the order inside each scene come from (seed, epoch), so every run with a seed repeats.
Without shuffling the order is the split's (the devkit's scene list, time order inside), which is also
`NuScenesDataset`'s, so the two sources give the same batches. `start_at(batches)` skips what a resumed
run already consumed without decoding it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

import datasets
import numpy as np
import pyarrow.parquet as pq
from nuscenes.utils import splits
from torch.utils.data import IterableDataset, get_worker_info

from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.dataset import history_tokens, to_tensors
from fd3d.data.hf import SAMPLE_FEATURES, shard_files
from fd3d.data.manifest import (
    MANIFEST,
    ShardError,
    check_local_split,
    check_shard_files,
    local_manifest,
    read_manifest,
    split_entries,
    split_tokens,
)
from fd3d.data.nuscenes import decode_row
from fd3d.data.resize import check_resize_mode

HUB_PREFIX = "hf://datasets/"


def shard_files_of(source: str, split: str, revision: str | None = None) -> list[str]:
    """The split's shard files, ordered as the devkit lists the split's scenes, checked against the
    export's manifest (`fd3d.data.manifest`): the same shards, and for local files the same sha256.

    `source` is a local export folder or a Hub dataset repo id (`org/name`, read through `hf://`).
    """
    if os.path.isdir(source):
        files = shard_files(source, split)
        check_local_split(source, split, files)
    else:
        entries = split_entries(manifest_of(source, revision), split, f"the manifest of {source}")
        root = f"{_hub_root(source, revision)}/data/{split}"
        found = _hub_call(source, lambda fs: fs.glob(f"{root}/*.parquet", detail=True))
        files = [f"hf://{path}" for path in found]
        if not files:
            raise FileNotFoundError(f"no Parquet shards for split {split!r} under {root}")
        # the Hub stores shards as LFS objects it checks by sha256; where it reports one, compare it
        digests = {f"hf://{path}": (info.get("lfs") or {}).get("sha256") for path, info in found.items()}
        check_shard_files(files, entries, split, digests)
    order = {name: i for i, name in enumerate(splits.create_splits_scenes().get(split, []))}
    return sorted(files, key=lambda f: (order.get(PurePosixPath(f).stem, len(order)), PurePosixPath(f).stem))


def manifest_of(source: str, revision: str | None = None) -> dict:
    """The manifest of a local export folder or of a Hub dataset repo."""
    if os.path.isdir(source):
        return local_manifest(source)
    path = f"{_hub_root(source, revision)}/data/{MANIFEST}"

    def read(fs) -> str:
        with fs.open(path, "r") as stream:
            return stream.read()

    try:
        return read_manifest(_hub_call(source, read), f"hf://{path}")
    except FileNotFoundError as error:
        raise ShardError(f"hf://{path} is missing: the dataset repo holds no fd3d shard manifest") from error


def shard_sample_tokens(source: str, split: str, revision: str | None = None) -> list[str]:
    """The sample tokens the manifest lists for a split."""
    return split_tokens(split_entries(manifest_of(source, revision), split, f"the manifest of {source}"))


def _hub_root(source: str, revision: str | None) -> str:
    at = f"@{revision}" if revision else ""
    return f"{HUB_PREFIX.removeprefix('hf://')}{source}{at}"


def _hub_call(source: str, call):
    """`call(HfFileSystem())`, with a network failure named as one (the endpoint and the cause)."""
    from huggingface_hub import HfFileSystem, constants
    from huggingface_hub import errors as hf_errors

    try:
        return call(HfFileSystem())
    except FileNotFoundError:
        raise
    except (OSError, hf_errors.HTTPError) as error:  # HTTPError: connection and HTTP failures
        message = " ".join(str(error).split()) or type(error).__name__
        raise ShardError(
            f"cannot read dataset {source!r} from the Hub at {constants.ENDPOINT} ({type(error).__name__}: "
            f"{message}); check the network or HF_ENDPOINT, or use a local export folder as DATASETS.SHARDS"
        ) from error


def shard_lengths(files: Sequence[str]) -> list[int]:
    """Rows per shard from the Parquet footers (no data read)."""
    lengths = []
    for file in files:
        if file.startswith("hf://"):
            from huggingface_hub import HfFileSystem

            with HfFileSystem().open(file.removeprefix("hf://"), "rb") as stream:
                lengths.append(pq.ParquetFile(stream).metadata.num_rows)
        else:
            lengths.append(pq.read_metadata(file).num_rows)
    return lengths


def _read_scene(file: str) -> list[dict]:
    stream = datasets.load_dataset("parquet", data_files=[file], split="train", streaming=True)
    return list(stream.cast(SAMPLE_FEATURES))


class SceneStream(IterableDataset):
    """Model-ready samples (as `NuScenesDataset` returns them) streamed scene by scene from shards."""

    def __init__(
        self,
        files: Sequence[str],
        image_size: tuple[int, int] | None = None,
        pc_range: Sequence[float] | None = None,
        classes: Sequence[str] = DETECTION_CLASSES,
        queue_length: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        resize: str = "antialias",
    ) -> None:
        if not files:
            raise ValueError("SceneStream needs at least one shard")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.files, self.lengths = list(files), shard_lengths(files)
        self.image_size, self.pc_range, self.classes = image_size, pc_range, tuple(classes)
        self.queue_length, self.shuffle, self.seed = queue_length, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.resize = check_resize_mode(resize)
        self.epoch, self.skip_batches, self.batch_size = 0, 0, 1

    # ------------------------------------------------------------------ order
    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def start_at(self, batches: int, batch_size: int) -> None:
        """Passes start after `batches` batches of `batch_size` (a resumed run's position) until reset to 0.

        Set in the process that owns the DataLoader: its workers get a copy of the stream at each pass.
        """
        self.skip_batches, self.batch_size = batches, batch_size

    def _generator(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, *keys])

    def _scene_order(self) -> list[int]:
        """This epoch's scene order (all ranks agree), then this rank's scenes."""
        order = list(range(len(self.files)))
        if self.shuffle:
            order = [order[i] for i in self._generator().permutation(len(order))]
        return order[self.rank :: self.world_size]

    def worker_scenes(self, worker: int, num_workers: int) -> list[int]:
        return self._scene_order()[worker::num_workers]

    def __len__(self) -> int:
        """Samples this rank reads per epoch (`DataLoader` counts batches from it)."""
        return sum(self.lengths[i] for i in self._scene_order())

    def _worker_skips(self, num_workers: int) -> list[int]:
        """Samples each worker skips so that the DataLoader's first `skip_batches` batches are left out.

        A DataLoader over an IterableDataset takes batches from its workers in turn, passing over a worker
        once it is exhausted; replaying that turn order over the workers' batch counts finds each one's share.
        """
        per_worker = [
            sum(self.lengths[i] for i in self.worker_scenes(w, num_workers)) for w in range(num_workers)
        ]
        batches_left = [-(-n // self.batch_size) for n in per_worker]
        taken = [0] * num_workers
        remaining, worker = self.skip_batches, 0
        while remaining > 0 and any(batches_left):
            if batches_left[worker]:
                batches_left[worker] -= 1
                taken[worker] += 1
                remaining -= 1
            worker = (worker + 1) % num_workers
        return [min(t * self.batch_size, n) for t, n in zip(taken, per_worker, strict=True)]

    # ------------------------------------------------------------------ samples
    def _sample(self, row: dict, rows: dict[str, dict]) -> dict:
        decode = {"image_size": self.image_size, "pc_range": self.pc_range, "classes": self.classes,
                  "resize": self.resize}  # fmt: skip
        sample = decode_row(row, **decode)
        if self.queue_length:
            previous = history_tokens(row["sample_token"], lambda t: rows[t]["prev_token"], self.queue_length)
            decoded = {t: decode_row(rows[t], **decode) for t in set(previous)}
            no_history = {**sample, "prev_exists": False}
            sample["queue"] = [decoded[t] for t in previous] if previous else [no_history] * self.queue_length
        return to_tensors(sample)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        skip = self._worker_skips(num_workers)[worker]
        for scene in self.worker_scenes(worker, num_workers):
            if skip >= self.lengths[scene]:
                skip -= self.lengths[scene]
                continue
            rows = _read_scene(self.files[scene])
            by_token = {row["sample_token"]: row for row in rows}
            order = range(len(rows))
            if self.shuffle:
                order = self._generator(scene).permutation(len(rows))
            for index in list(order)[skip:]:
                yield self._sample(rows[index], by_token)
            skip = 0


def batches_per_epoch(
    stream: SceneStream, epoch: int, batch_size: int, num_workers: int, drop_last: bool
) -> int:
    """Batches every process takes in `epoch`: the fewest any rank's DataLoader yields.

    Each worker batches its own scenes; whole scenes per rank make the ranks' counts differ, and processes
    that step together must step as often, so each stops at the smallest count (a multi-process epoch may
    leave a few samples out; one process reads every sample).
    """
    workers = max(num_workers, 1)
    counts = []
    for rank in range(stream.world_size):
        view = copy.copy(stream)
        view.rank, view.epoch = rank, epoch
        samples = [sum(view.lengths[i] for i in view.worker_scenes(w, workers)) for w in range(workers)]
        counts.append(sum(n // batch_size if drop_last else -(-n // batch_size) for n in samples))
    return min(counts)
