"""The one inference path: the dataset a detector reads, its loader, and its predictions as `Detections`.

Training-time evaluation, `--eval-only`, scoring a downloaded model and the figures all predict through
here, so a detector is scored on the images it was built for (size, resize filter), with its frame
queue or under the scene protocol (`fd3d.evaluation.scene_protocol`), on one process or many.
"""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, send_to_device
from fvcore.common.config import CfgNode
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from fd3d.config import get_cfg
from fd3d.data.build import build_dataset, build_loader
from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.stream import SceneStream
from fd3d.evaluation.nuscenes_eval import Detections
from fd3d.evaluation.scene_protocol import predict_scenes, scene_loader
from fd3d.modeling.evaluating import evaluating

PREDICTION_KEYS = ("boxes_lidar", "scores", "labels")  # a detector's per-sample output, `Detections`' order


def data_config(
    dataroot: str | os.PathLike, version: str, classes: tuple[str, ...] | list[str] = DETECTION_CLASSES
) -> CfgNode:
    """The default config reading `dataroot`'s tables: what `dataset_for` needs when a model comes without
    a run config (a downloaded expert, the figures of a few saved models)."""
    cfg = get_cfg()
    cfg.DATASETS.DATAROOT, cfg.DATASETS.VERSION = str(dataroot), version
    cfg.DATASETS.CLASSES = list(classes)
    return cfg


def dataset_for(
    detector: nn.Module,
    cfg: CfgNode,
    split: str,
    scene_protocol: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> Dataset:
    """`split` from cfg's data source (DATASETS.*) decoded as `detector` reads it: its image size, resize
    filter and point-cloud range rather than the config's, which may describe another model; its frame
    queue, or single frames under `scene_protocol` (the history is carried, not re-read). A streamed
    source is already process `rank`'s part of `world_size`."""
    data = cfg.clone()
    data.defrost()
    data.INPUT.IMAGE_SIZE = list(detector.image_size)
    data.INPUT.RESIZE = detector.resize_mode
    data.MODEL.POINT_CLOUD_RANGE = detector.pc_range.tolist()
    queue_length = 0 if scene_protocol else int(detector.queue_length)
    return build_dataset(
        data, split, tuple(detector.image_size), queue_length, rank=rank, world_size=world_size
    )


def loader_for(
    dataset: Dataset,
    batch_size: int = 1,
    num_workers: int = 0,
    scene_protocol: bool = False,
    accelerator: Accelerator | None = None,
) -> DataLoader:
    """The unshuffled loader `predict` reads: under `scene_protocol` this process's whole scenes, one frame
    at a time in time order; otherwise batches, sharded between processes by `accelerator.prepare` unless
    the dataset is a `SceneStream` (already this process's part)."""
    rank, world_size = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    if scene_protocol:
        return scene_loader(dataset, num_workers, rank, world_size)
    loader = build_loader(dataset, batch_size, False, num_workers)
    if accelerator is None or isinstance(dataset, SceneStream):
        return loader
    return accelerator.prepare(loader)


def model_device(model: nn.Module) -> torch.device:
    """Where `model`'s parameters live (the CPU for a model without any): where its inputs must go."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def to_detections(prediction: dict[str, Tensor]) -> Detections:
    """A detector's prediction of one sample (`boxes_lidar`, `scores`, `labels` tensors) as `Detections`."""
    return Detections(*(prediction[key].detach().cpu().numpy() for key in PREDICTION_KEYS))


def predict(
    detector: nn.Module,
    loader,
    accelerator: Accelerator | None = None,
    scene_protocol: bool = False,
    progress: bool = True,
) -> dict[str, Detections]:
    """{sample token: Detections} of every sample `loader` yields, on every process, in eval mode.

    With `scene_protocol` the loader is `loader_for`'s scene loader and each scene's BEV is carried frame
    to frame (`predict_scenes`). With `accelerator` the processes' predictions are gathered in one
    collective call after the last batch, so processes that read different numbers of batches (scenes,
    streams) never wait on each other; keyed by token, the samples `accelerator.prepare` repeats to even
    out the last batch count once. The progress bar shows on the main process only.
    """
    device = accelerator.device if accelerator is not None else model_device(detector)
    main = accelerator is None or accelerator.is_main_process
    frames = tqdm(loader, desc="predict", disable=not (progress and main), leave=False)
    with evaluating(detector):
        if scene_protocol:
            predictions = predict_scenes(detector, frames, device)
        else:
            predictions = {}
            for batch in frames:
                outputs = detector(send_to_device(batch, device))
                predictions.update(zip(batch["sample_token"], outputs, strict=True))
    local = {token: to_detections(prediction) for token, prediction in predictions.items()}
    if accelerator is None:
        return local
    detections: dict[str, Detections] = {}
    for part in gather_object([local]):
        for token, found in part.items():
            detections.setdefault(token, found)
    return detections
