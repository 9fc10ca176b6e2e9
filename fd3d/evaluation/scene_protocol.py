"""The official temporal test protocol: one BEV carried through each scene in time order.

BEVFormer's official `forward_test` encodes every frame once: the BEV of the previous frame of the same
scene is the next frame's history (`prev_bev`), the CAN-bus vector becomes the change since that frame,
and a new `scene_token` resets both. fd3d's other protocol (TEST.TEMPORAL_PROTOCOL "queue", what its own
models train with) re-encodes the QUEUE_LENGTH previous frames for every sample instead: bounded
history, QUEUE_LENGTH + 1 encodings per frame, and no order needed between samples.

Scenes are split whole between processes (a scene's frames depend on each other); each process steps its
scenes one frame at a time and the predictions are gathered once at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from accelerate.utils import send_to_device
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from fd3d.config import ConfigError
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.modeling.outputs import DetectorFeatures, HeadOutputs

TEMPORAL_PROTOCOLS = ("queue", "scene")


def check_protocol(protocol: str) -> str:
    if protocol not in TEMPORAL_PROTOCOLS:
        raise ConfigError(
            f"TEST.TEMPORAL_PROTOCOL must be one of {list(TEMPORAL_PROTOCOLS)}, got {protocol!r}"
        )
    return protocol


def uses_scene_protocol(detector: nn.Module, protocol: str) -> bool:
    """Whether evaluation steps through scenes: the detector has a history and `protocol` (TEST.
    TEMPORAL_PROTOCOL of the evaluation's config; "" for the detector's own, else "queue") is "scene"."""
    chosen = protocol or getattr(detector, "temporal_protocol", "") or "queue"
    return check_protocol(chosen) == "scene" and int(detector.queue_length) > 0


def stream_frame(
    detector: nn.Module, batch: dict, previous: dict | None
) -> tuple[DetectorFeatures, HeadOutputs, dict | None]:
    """One frame of a scene: (features, head outputs, the state for the scene's next frame).

    `previous` is what this function returned for the frame before in the same scene, or None at a
    scene's first frame (the detector then has no history: no previous BEV, CAN-bus deltas of 0).
    """
    if previous is not None:
        batch_size = batch["lidar2img"].shape[0]
        prev_exists = torch.ones(batch_size, dtype=torch.bool, device=batch["lidar2img"].device)
        batch = {**batch, **previous, "prev_exists": prev_exists}
    features = detector.extract_features(batch)
    head = detector.forward_head(features, batch)
    return features, head, detector.next_state(features, batch)


def scene_indices(dataset: NuScenesDataset, rank: int, world_size: int) -> list[int]:
    """This process's share of the dataset's samples: every `world_size`-th scene from `rank`, whole, its
    frames in time order (the dataset lists the split scene after scene, each in time order)."""
    scenes: dict[str, list[int]] = {}
    for index, token in enumerate(dataset.tokens):
        scenes.setdefault(dataset.reader.get("sample", token)["scene_token"], []).append(index)
    ordered = list(scenes.values())
    return [index for scene in ordered[rank::world_size] for index in scene]


def scene_loader(dataset: Dataset, num_workers: int, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Single frames of this process's scenes in time order. A `SceneStream` is already this process's
    whole scenes in order (built unshuffled); a map-style dataset reads the indices `scene_indices` picks."""
    sampler = None
    if isinstance(dataset, NuScenesDataset):
        sampler = scene_indices(dataset, rank, world_size)
    return DataLoader(
        dataset, batch_size=1, sampler=sampler, num_workers=num_workers, collate_fn=collate_samples
    )


def predict_scenes(
    detector: nn.Module, frames: Iterable[dict], device: torch.device | str
) -> dict[str, dict[str, Tensor]]:
    """{sample token: prediction} of every frame, each scene stepped through with `stream_frame`.

    `frames` are batches of one frame, each scene's in time order (scenes may interleave: DataLoader
    workers each read their own scenes); a scene's state lives until its next frame comes.
    """
    states: dict[str, dict | None] = {}
    predictions = {}
    for batch in frames:
        if len(batch["sample_token"]) != 1:
            raise ValueError("the scene protocol steps one frame at a time: batches of one sample")
        batch = send_to_device(batch, device)
        scene = batch["scene_token"][0]
        _, head, states[scene] = stream_frame(detector, batch, states.pop(scene, None))
        predictions[batch["sample_token"][0]] = detector.predict(head)[0]
    return predictions
