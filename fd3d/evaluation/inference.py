"""Score one trained detector on a whole split with the official devkit, on one process.

For a model that is already trained and comes without a run config, such as a downloaded or shipped
expert: the demo scores the model-zoo expert with it. The trainer's evaluation (`fd3d.engine.evaluator`)
predicts through the same `fd3d.evaluation.predict`.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from fd3d.evaluation.nuscenes_eval import evaluate_detections
from fd3d.evaluation.predict import data_config, dataset_for, loader_for, predict
from fd3d.evaluation.scene_protocol import uses_scene_protocol


def evaluate_model(
    detector: nn.Module,
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    out_dir: str | os.PathLike,
    progress: bool = True,
    temporal_protocol: str = "",
) -> dict:
    """Devkit metrics of `detector` on `split`; writes results_nusc.json and metrics.json to `out_dir`.

    The detector reads the split as it was built to (`dataset_for`), under `temporal_protocol` ("" for
    the one its config names, TEST.TEMPORAL_PROTOCOL: a converted official BEVFormer carries "scene",
    the official test protocol; fd3d's own models "queue"), as the trainer's `--eval-only` does."""
    scene_protocol = uses_scene_protocol(detector, temporal_protocol)
    dataset = dataset_for(detector, data_config(dataroot, version), split, scene_protocol)
    loader = loader_for(dataset, scene_protocol=scene_protocol)
    detections = predict(detector, loader, scene_protocol=scene_protocol, progress=progress)
    return evaluate_detections(dataset.reader, detections, split, Path(out_dir))
