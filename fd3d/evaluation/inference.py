"""Run one trained detector over a whole split and score it with the official devkit.

The trainer evaluates through Accelerate (`fd3d.engine.evaluator`); this is the single-process path for
a model that is already trained, such as a downloaded or shipped expert: the demo scores the model-zoo
expert with it, without a training config.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.evaluation.nuscenes_eval import Detections, evaluate_detections
from fd3d.modeling.evaluating import evaluating


def dataset_for(
    detector: nn.Module, dataroot: str | os.PathLike, version: str, split: str
) -> NuScenesDataset:
    """The split decoded as `detector` reads it: its image size, point-cloud range and frame queue."""
    return NuScenesDataset(
        dataroot,
        version,
        split,
        detector.image_size,
        detector.pc_range.tolist(),
        queue_length=int(detector.queue_length),
    )


def predict_split(
    detector: nn.Module, dataset: NuScenesDataset, progress: bool = True
) -> dict[str, Detections]:
    """{sample token: Detections} for every sample of `dataset`, one frame at a time in eval mode."""
    detections = {}
    with evaluating(detector):
        for index in tqdm(range(len(dataset)), desc="predict", disable=not progress, leave=False):
            sample = dataset[index]
            prediction = detector(collate_samples([sample]))[0]
            detections[sample["sample_token"]] = Detections(
                *(prediction[key].cpu().numpy() for key in ("boxes_lidar", "scores", "labels"))
            )
    return detections


def evaluate_model(
    detector: nn.Module,
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    out_dir: str | os.PathLike,
    progress: bool = True,
) -> dict:
    """Devkit metrics of `detector` on `split`; writes results_nusc.json and metrics.json to `out_dir`."""
    dataset = dataset_for(detector, dataroot, version, split)
    detections = predict_split(detector, dataset, progress)
    return evaluate_detections(dataset.reader, detections, split, Path(out_dir))
