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


def evaluate_model(
    detector: nn.Module,
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    out_dir: str | os.PathLike,
    progress: bool = True,
) -> dict:
    """Devkit metrics of `detector` on `split`; writes results_nusc.json and metrics.json to `out_dir`.

    The detector reads the split as it was built to (`dataset_for`), with its frame queue, one sample at
    a time."""
    dataset = dataset_for(detector, data_config(dataroot, version), split)
    detections = predict(detector, loader_for(dataset), progress=progress)
    return evaluate_detections(dataset.reader, detections, split, Path(out_dir))
