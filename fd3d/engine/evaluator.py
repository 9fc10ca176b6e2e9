"""Distributed inference and the official nuScenes metrics, computed once over all processes' predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, send_to_device
from fvcore.common.config import CfgNode
from torch import Tensor, nn
from tqdm import tqdm

from fd3d.data.nuscenes import NuScenesReader
from fd3d.data.stream import SceneStream
from fd3d.evaluation.nuscenes_eval import Detections, evaluate_detections, format_metrics
from fd3d.evaluation.scene_protocol import predict_scenes
from fd3d.modeling.evaluating import evaluating

BOX_FIELDS = 9


def pack_predictions(predictions: list[dict[str, Tensor]], max_detections: int) -> Tensor:
    """Per-sample predictions -> (B, K, 11) rows (box 9, score, label), padded with score -1, so that
    `gather_for_metrics` can move them between processes."""
    packed = torch.full((len(predictions), max_detections, BOX_FIELDS + 2), -1.0)
    for row, prediction in enumerate(predictions):
        count = min(len(prediction["scores"]), max_detections)
        packed[row, :count, :BOX_FIELDS] = prediction["boxes_lidar"][:count]
        packed[row, :count, BOX_FIELDS] = prediction["scores"][:count]
        packed[row, :count, BOX_FIELDS + 1] = prediction["labels"][:count].float()
    return packed


def unpack_predictions(packed: Tensor) -> Detections:
    rows = packed[packed[:, BOX_FIELDS] >= 0].double().cpu().numpy()
    return Detections(rows[:, :BOX_FIELDS], rows[:, BOX_FIELDS], rows[:, BOX_FIELDS + 1].astype(int))


def _predict_stream(
    detector: nn.Module, loader, accelerator: Accelerator, scene_protocol: bool
) -> dict[str, Detections] | None:
    """Each process reads its own whole scenes, in counts that differ (a `SceneStream`, or any split under
    the scene protocol): predict locally, then gather everything in one collective call, so no process
    waits on a batch another never reads. With `scene_protocol` each scene's BEV is carried frame to frame
    (`fd3d.evaluation.scene_protocol`)."""
    progress = tqdm(loader, desc="evaluate", disable=not accelerator.is_main_process, leave=False)
    if scene_protocol:
        predicted = predict_scenes(detector, progress, accelerator.device)
        local = {token: pack_predictions([p], detector.max_detections)[0] for token, p in predicted.items()}
    else:
        local = {}
        for batch in progress:
            predictions = detector(send_to_device(batch, accelerator.device))
            rows = pack_predictions(predictions, detector.max_detections)
            local.update(zip(batch["sample_token"], rows, strict=True))
    gathered = gather_object([local])
    if not accelerator.is_main_process:
        return None
    return {token: unpack_predictions(rows) for part in gathered for token, rows in part.items()}


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
    A streamed split (`SceneStream`) is scored with `reader`'s tables (DATASETS.DATAROOT). With
    `scene_protocol` the loader is `fd3d.evaluation.scene_protocol.scene_loader`'s (whole scenes per
    process, frames in time order, not prepared by accelerate).
    """
    if scene_protocol or isinstance(loader.dataset, SceneStream):
        with evaluating(detector):
            detections = _predict_stream(detector, loader, accelerator, scene_protocol)
        if detections is None:
            return None
        reader = reader if reader is not None else loader.dataset.reader
        expected = reader.sample_tokens(cfg.DATASETS.TEST_SPLIT)
        missing = len(set(expected) - set(detections))
        if missing:
            raise RuntimeError(
                f"the evaluation left out {missing} of the {len(expected)} samples of the split"
            )
        metrics = evaluate_detections(
            reader, detections, cfg.DATASETS.TEST_SPLIT, Path(out_dir), cfg.DATASETS.CLASSES
        )
        print(format_metrics(metrics))
        return metrics
    dataset = loader.dataset
    index_of = {token: i for i, token in enumerate(dataset.tokens)}
    indices, packed = [], []
    progress = tqdm(loader, desc="evaluate", disable=not accelerator.is_main_process, leave=False)
    with evaluating(detector):
        for batch in progress:
            predictions = detector(batch)
            batch_index = torch.tensor(
                [index_of[t] for t in batch["sample_token"]], device=accelerator.device
            )
            rows = pack_predictions(predictions, detector.max_detections).to(accelerator.device)
            batch_index, rows = accelerator.gather_for_metrics((batch_index, rows))
            indices.append(batch_index.cpu())
            packed.append(rows.cpu())
    if not accelerator.is_main_process:
        return None
    all_indices, all_rows = torch.cat(indices), torch.cat(packed)
    detections = {
        dataset.tokens[int(i)]: unpack_predictions(rows)
        for i, rows in zip(all_indices, all_rows, strict=True)
    }
    missing = len(dataset.tokens) - len(detections)
    if missing:
        raise RuntimeError(f"evaluation lost {missing} of {len(dataset.tokens)} samples while gathering")
    out = Path(out_dir)
    metrics = evaluate_detections(
        dataset.reader, detections, cfg.DATASETS.TEST_SPLIT, out, cfg.DATASETS.CLASSES
    )
    print(format_metrics(metrics))
    return metrics


def publish_metrics(metrics: dict, eval_dir: Path, output_dir: Path) -> None:
    """The latest evaluation's metrics also at OUTPUT_DIR/metrics.json (the file tools and users read)."""
    shutil.copyfile(eval_dir / "metrics.json", output_dir / "metrics.json")
    with (output_dir / "metrics_history.jsonl").open("a") as history:
        history.write(json.dumps({"dir": eval_dir.name, **metrics}) + "\n")
