"""One sample of a split through a few detectors: their features and predictions, and every figure."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from accelerate.utils import send_to_device
from torch import nn

from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.evaluation.predict import data_config, dataset_for, model_device, to_detections
from fd3d.evaluation.visualize.activations import (
    feature_activation,
    plot_bev_activations,
    plot_pv_activations,
    pv_activation,
)
from fd3d.evaluation.visualize.boxes_bev import plot_boxes_bev
from fd3d.evaluation.visualize.boxes_cameras import plot_boxes_cameras
from fd3d.modeling.evaluating import evaluating

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_model_name(name: str) -> str:
    """A model name usable in a file name: letters, digits, `_`, `-`, `.`, starting with a letter/digit."""
    if not _NAME.match(name):
        raise ValueError(
            f"model name {name!r} must be letters, digits, '_', '-' or '.', starting with a letter or digit "
            "(it becomes part of a file name)"
        )
    return name


def run_model_on_sample(model: nn.Module, dataset: NuScenesDataset, sample_index: int) -> dict:
    """Features and predictions of one sample: the batch of one (on the CPU), `features`, `predictions`
    (boxes, scores, labels as numpy). The figures need the features too, which `predict` does not keep."""
    batch = collate_samples([dataset[sample_index]])
    with evaluating(model):
        on_device = send_to_device(batch, model_device(model))
        features = model.extract_features(on_device)
        outputs = model.forward_head(features, on_device)
        detections = to_detections(model.predict(outputs)[0])
    return {
        "batch": batch,
        "features": features,
        "predictions": (detections.boxes_lidar, detections.scores, detections.labels),
    }


def visualize_sample(
    models: Mapping[str, nn.Module],
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    sample_index: int,
    out_dir: str | os.PathLike,
    score_threshold: float = 0.3,
    classes: Sequence[str] = DETECTION_CLASSES,
) -> dict[str, Path]:
    """Write the activation and box figures of one sample for every model; returns {figure: path}.

    Each model reads the sample as it was built to (`dataset_for`: its image size, resize filter,
    point-cloud range and queue length). Keys:
    `bev_activation` (models with a BEV only; absent, with a log message, when none has one),
    `pv_activation_<name>` (first FPN level, per model), `boxes_cameras_<name>` (ground truth and the
    model's predictions above `score_threshold` on the six images as the first model reads them) and
    `boxes_bev` (ground truth in the first model's point-cloud range, predictions of every model).
    """
    if not models:
        raise ValueError("visualize_sample needs at least one model")
    for name in models:
        check_model_name(name)
    out = Path(out_dir)
    data = data_config(dataroot, version, list(classes))
    datasets: dict[tuple, NuScenesDataset] = {}
    results: dict[str, dict] = {}
    for name, model in models.items():
        key = (tuple(model.image_size), model.resize_mode, tuple(model.pc_range.tolist()), model.queue_length)
        if key not in datasets:
            datasets[key] = dataset_for(model, data, split)
        dataset = datasets[key]
        if not 0 <= sample_index < len(dataset):
            raise IndexError(
                f"sample index {sample_index} out of range: split {split!r} has {len(dataset)} samples"
            )
        results[name] = run_model_on_sample(model, dataset, sample_index)
    written: dict[str, Path] = {}
    bev_maps = {
        name: feature_activation(result["features"].bev[0])
        for name, result in results.items()
        if result["features"].bev is not None
    }
    if bev_maps:
        extents = {name: results[name]["features"].bev_extent for name in bev_maps}
        gt_of_first = results[next(iter(results))]["batch"]["gt_boxes"][0].numpy()
        written["bev_activation"] = plot_bev_activations(
            bev_maps, extents, out / "bev_activation.png", gt_of_first
        )
    else:
        logger.info("no BEV activation figure: none of %s has a BEV map", list(models))
    for name, result in results.items():
        batch = result["batch"]
        images = batch["images"][0].permute(0, 2, 3, 1).numpy()  # (Ncam, H, W, 3) uint8
        maps = pv_activation(result["features"].pv[0][0])
        token = batch["sample_token"][0]
        written[f"pv_activation_{name}"] = plot_pv_activations(
            images, maps, out / f"pv_activation_{name}.png", title=f"{name}: first FPN level, sample {token}"
        )
    first = results[next(iter(results))]
    images = first["batch"]["images"][0].permute(0, 2, 3, 1).numpy()
    gt_boxes = first["batch"]["gt_boxes"][0].numpy()
    for name, result in results.items():
        written[f"boxes_cameras_{name}"] = plot_boxes_cameras(
            images,
            first["batch"]["lidar2img"][0].numpy(),
            gt_boxes,
            result["predictions"],
            out / f"boxes_cameras_{name}.png",
            title=f"{name}, sample {first['batch']['sample_token'][0]}",
            score_threshold=score_threshold,
            classes=classes,
        )
    pc_range = models[next(iter(models))].pc_range.tolist()
    written["boxes_bev"] = plot_boxes_bev(
        gt_boxes,
        {name: result["predictions"] for name, result in results.items()},
        (pc_range[0], pc_range[1], pc_range[3], pc_range[4]),
        out / "boxes_bev.png",
        score_threshold,
    )
    return written
