"""Map-style PyTorch dataset over a nuScenes-format dataroot, with an optional queue of previous frames."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.nuscenes import NuScenesReader, decode_row
from fd3d.data.resize import check_resize_mode

# Per-sample entries with the same shape in every sample of a batch; everything else stays a list.
STACKED_KEYS = (
    "images",
    "intrinsics",
    "cam2lidar",
    "lidar2img",
    "lidar2ego",
    "ego2global",
    "lidar2global",
    "curr2prev_lidar",
    "prev_exists",
    "can_bus",
)


# float64 entries kept so: absolute global positions, whose frame-to-frame differences (the official CAN-bus
# deltas) lose centimetres in float32 a few kilometres from the map origin
FLOAT64_KEYS = ("can_bus",)


def to_tensors(sample: dict) -> dict:
    """numpy → torch; images become (Ncam, 3, H, W) uint8 (models normalise them themselves)."""
    out = {}
    for key, value in sample.items():
        if key == "images":
            out[key] = torch.from_numpy(np.ascontiguousarray(value.transpose(0, 3, 1, 2)))
        elif key in FLOAT64_KEYS:
            out[key] = torch.from_numpy(np.asarray(value, dtype=np.float64))
        elif isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(value.astype(np.float32) if value.dtype == np.float64 else value)
        elif isinstance(value, bool):
            out[key] = torch.tensor(value)
        elif key == "queue":
            out[key] = [to_tensors(frame) for frame in value]
        else:
            out[key] = value
    return out


def history_tokens(token: str, prev_of: Callable[[str], str], length: int) -> list[str]:
    """The `length` keyframes before `token` in its scene, oldest first, padded with the scene's earliest.

    `prev_of(t)` is the token before t ("" at a scene's start). Empty for a scene's first frame.
    """
    previous: list[str] = []
    current = token
    while len(previous) < length:
        current = prev_of(current)
        if not current:
            break
        previous.append(current)
    if previous and len(previous) < length:
        previous += [previous[-1]] * (length - len(previous))
    return previous[::-1]


class NuScenesDataset(Dataset):
    """Samples of one split, decoded at the model's resolution and point-cloud range.

    Images are resized to `image_size` by `resize` (`fd3d.data.resize`). `queue_length` > 0
    adds `queue`: that many previous keyframes of the same scene, oldest first (what
    BEVFormer's temporal self-attention consumes). Near the start of a scene the scene's first frame (whose
    `prev_exists` is False) is repeated; on the first frame itself the queue repeats it.
    """

    def __init__(
        self,
        dataroot: str | os.PathLike,
        version: str,
        split: str,
        image_size: tuple[int, int] | None = None,
        pc_range: Sequence[float] | None = None,
        classes: Sequence[str] = DETECTION_CLASSES,
        queue_length: int = 0,
        resize: str = "antialias",
    ) -> None:
        self.reader = NuScenesReader(dataroot, version)
        self.resize = check_resize_mode(resize)
        self.tokens = self.reader.sample_tokens(split)
        if not self.tokens:
            raise ValueError(f"split {split!r} has no samples in {dataroot} ({version})")
        self.image_size = image_size
        self.pc_range = pc_range
        self.classes = tuple(classes)
        self.queue_length = queue_length

    def __len__(self) -> int:
        return len(self.tokens)

    def _load(self, token: str) -> dict:
        return decode_row(
            self.reader.read_row(token), self.image_size, self.pc_range, self.classes, self.resize
        )

    def __getitem__(self, index: int) -> dict:
        token = self.tokens[index]
        sample = self._load(token)
        if self.queue_length:
            previous = history_tokens(
                token, lambda t: self.reader.get("sample", t)["prev"], self.queue_length
            )
            loaded = {t: self._load(t) for t in set(previous)}
            no_history = {**sample, "prev_exists": False}
            sample["queue"] = [loaded[t] for t in previous] if previous else [no_history] * self.queue_length
        return to_tensors(sample)


def collate_samples(samples: list[dict]) -> dict:
    """Stack fixed-shape entries into a batch; keep variable-size ones (boxes, tokens) as lists."""
    batch: dict = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key in STACKED_KEYS:
            batch[key] = torch.stack(values)
        elif key == "queue":
            batch[key] = [collate_samples(list(frames)) for frames in zip(*values, strict=True)]
        else:
            batch[key] = values
    return batch
