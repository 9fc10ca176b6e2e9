"""The official nuScenes metrics of a detector's predictions (`fd3d.evaluation.predict`), scored once on
the main process over all processes' predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from accelerate import Accelerator
from fvcore.common.config import CfgNode
from torch import nn

from fd3d.data.nuscenes import NuScenesReader
from fd3d.evaluation.nuscenes_eval import evaluate_detections, format_metrics
from fd3d.evaluation.predict import predict


def evaluate(
    detector: nn.Module,
    loader,
    accelerator: Accelerator,
    cfg: CfgNode,
    out_dir: str | Path,
    reader: NuScenesReader | None = None,
    scene_protocol: bool = False,
) -> dict | None:
    """Predict the test split on every process, gather, and score on the main process.

    Writes `out_dir/metrics.json` (and the devkit's files) and returns the metrics there; None elsewhere.
    `loader` is `fd3d.evaluation.predict.loader_for`'s. A streamed split (`SceneStream`) is scored with
    `reader`'s tables (DATASETS.DATAROOT); a map-style one with its own. A split left incomplete is an
    error, not a score over fewer samples.
    """
    detections = predict(detector, loader, accelerator, scene_protocol)
    if not accelerator.is_main_process:
        return None
    reader = reader if reader is not None else loader.dataset.reader
    expected = reader.sample_tokens(cfg.DATASETS.TEST_SPLIT)
    missing = len(set(expected) - set(detections))
    if missing:
        raise RuntimeError(f"the evaluation left out {missing} of the {len(expected)} samples of the split")
    metrics = evaluate_detections(
        reader, detections, cfg.DATASETS.TEST_SPLIT, Path(out_dir), cfg.DATASETS.CLASSES
    )
    print(format_metrics(metrics))
    return metrics


def publish_metrics(metrics: dict, eval_dir: Path, output_dir: Path) -> None:
    """The latest evaluation's metrics also at OUTPUT_DIR/metrics.json (the file tools and users read)."""
    shutil.copyfile(eval_dir / "metrics.json", output_dir / "metrics.json")
    with (output_dir / "metrics_history.jsonl").open("a") as history:
        history.write(json.dumps({"dir": eval_dir.name, **metrics}) + "\n")
