"""Official nuScenes detection metrics for predictions made in the LiDAR frame.

Predictions are converted to the devkit's submission format (global frame, velocity, attribute) and
scored by `nuscenes.eval.detection.evaluate.DetectionEval` with the `detection_cvpr_2019` config, so
the numbers are the leaderboard's, not a re-implementation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nuscenes.eval.detection.config import config_factory
from nuscenes.eval.detection.evaluate import DetectionEval

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.data.classes import DETECTION_CLASSES, attribute_for
from fd3d.data.geometry import matrix_to_quaternion, rotation_z
from fd3d.data.nuscenes import NuScenesReader

METRIC_KEYS = ("NDS", "mAP", "mATE", "mASE", "mAOE", "mAVE", "mAAE")
_TP_NAMES = {
    "mATE": "trans_err",
    "mASE": "scale_err",
    "mAOE": "orient_err",
    "mAVE": "vel_err",
    "mAAE": "attr_err",
}
MAX_BOXES_PER_SAMPLE = 500


@dataclass
class Detections:
    """One sample's predictions: `boxes_lidar` (N, 9) as (x, y, z, w, l, h, yaw, vx, vy) in the LiDAR
    frame (z is the box centre), `scores` (N,), `labels` (N,) indexing the class list."""

    boxes_lidar: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.boxes_lidar = np.asarray(self.boxes_lidar, dtype=np.float64).reshape(-1, 9)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if not len(self.boxes_lidar) == len(self.scores) == len(self.labels):
            raise ValueError(
                f"boxes ({len(self.boxes_lidar)}), scores ({len(self.scores)}) and labels "
                f"({len(self.labels)}) differ in length"
            )


def _boxes_to_global(
    detections: Detections, lidar2global: np.ndarray, sample_token: str, classes
) -> list[dict]:
    rotation = lidar2global[:3, :3]
    boxes = []
    order = np.argsort(-detections.scores)[:MAX_BOXES_PER_SAMPLE]
    for i in order:
        x, y, z, w, length, h, yaw, vx, vy = detections.boxes_lidar[i]
        center = rotation @ np.array([x, y, z]) + lidar2global[:3, 3]
        velocity = rotation @ np.array([vx, vy, 0.0])
        name = classes[int(detections.labels[i])]
        boxes.append(
            {
                "sample_token": sample_token,
                "translation": center.tolist(),
                "size": [float(w), float(length), float(h)],
                "rotation": matrix_to_quaternion(rotation @ rotation_z(yaw)),
                "velocity": velocity[:2].tolist(),
                "detection_name": name,
                "detection_score": float(detections.scores[i]),
                "attribute_name": attribute_for(name, float(np.hypot(vx, vy))),
            }
        )
    return boxes


def build_submission(
    reader: NuScenesReader, detections: Mapping[str, Detections], classes: Sequence[str] = DETECTION_CLASSES
) -> dict:
    """The devkit's results dict ({"meta", "results": {sample_token: [box, ...]}}) in the global frame."""
    results = {
        token: _boxes_to_global(dets, reader.lidar2global(token), token, classes)
        for token, dets in detections.items()
    }
    meta = {
        "use_camera": True,
        "use_lidar": False,
        "use_radar": False,
        "use_map": False,
        "use_external": False,
    }
    return {"meta": meta, "results": results}


def check_submission_covers_split(reader: NuScenesReader, submission: dict, eval_set: str) -> None:
    """The devkit insists that predictions cover exactly the split's samples; say which do not."""
    expected = set(reader.sample_tokens(eval_set))
    if not expected:
        raise ValueError(f"eval set {eval_set!r} has no samples in {reader.dataroot} ({reader.version})")
    given = set(submission.get("results", {}))
    missing, extra = sorted(expected - given), sorted(given - expected)
    if missing:
        raise ValueError(
            f"predictions are missing for {len(missing)} of the {len(expected)} samples of {eval_set!r} "
            f"(e.g. {missing[:3]}); give every sample an entry, an empty list if nothing was detected"
        )
    if extra:
        raise ValueError(f"{len(extra)} predicted samples are not in {eval_set!r} (e.g. {extra[:3]})")


def _flatten(summary: dict) -> dict:
    metrics = {"NDS": summary["nd_score"], "mAP": summary["mean_ap"]}
    for key, name in _TP_NAMES.items():
        metrics[key] = summary["tp_errors"][name]
    metrics["per_class_AP"] = dict(summary["mean_dist_aps"])
    return metrics


def evaluate_submission(
    reader: NuScenesReader,
    result_path: str | os.PathLike,
    eval_set: str,
    out_dir: str | os.PathLike,
    render_curves: bool = False,
) -> dict:
    """Score a results JSON with the devkit; writes its metrics_summary.json (and PR/TP plots if asked)
    and our flat `metrics.json` (NDS, mAP, mATE…mAAE on the devkit's 0–1 scale, per-class AP)."""
    submission = read_submission(result_path)
    return _score(reader, submission, result_path, eval_set, out_dir, render_curves)


BOX_VECTORS = {"translation": 3, "size": 3, "rotation": 4, "velocity": 2}


class SubmissionError(ValueError):
    """A results file the devkit must not be given; names the file, the sample and the field."""


def read_submission(path: str | os.PathLike) -> dict:
    """The parsed results file, or a SubmissionError naming it (its boxes are checked by `_score`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise SubmissionError(f"results file {path} cannot be read: {error}") from error
    if not text.strip():
        raise SubmissionError(f"results file {path} is empty")
    try:
        submission = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionError(f"results file {path} is not JSON ({error})") from error
    return submission


def check_submission_boxes(submission: object, path: str | os.PathLike) -> None:
    """The devkit's submission format, enforced with named errors (its own checks are `assert`s, gone
    under `python -O`, and a NaN box would be scored silently): a {"meta", "results"} dict, every box
    with finite vectors of the right length, a detection class, a finite score, its sample's token; and
    at least one box in all (an all-empty submission scores nothing)."""
    if not isinstance(submission, dict) or not isinstance(submission.get("results"), dict):
        raise SubmissionError(f"results file {path} must be a JSON object with a 'results' object")
    if not isinstance(submission.get("meta"), dict):
        raise SubmissionError(f"results file {path} has no 'meta' object (use_camera, use_lidar, ...)")
    total = 0
    for token, boxes in submission["results"].items():
        if not isinstance(boxes, list):
            raise SubmissionError(f"{path}: results[{token!r}] must be a list of boxes")
        for index, box in enumerate(boxes):
            _check_box(box, f"{path}: results[{token!r}][{index}]", token)
        total += len(boxes)
    if total == 0:
        raise SubmissionError(
            f"{path}: all {len(submission['results'])} samples have empty predictions; the model predicted "
            "nothing, there is nothing to score"
        )


def _check_box(box: object, where: str, token: str) -> None:
    if not isinstance(box, dict):
        raise SubmissionError(f"{where} must be an object")
    if box.get("sample_token") != token:
        raise SubmissionError(f"{where} has sample_token {box.get('sample_token')!r}, not its key {token!r}")
    for field, length in BOX_VECTORS.items():
        value = box.get(field)
        if not isinstance(value, list) or len(value) != length:
            raise SubmissionError(f"{where}: {field} must be a list of {length} numbers, got {value!r}")
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in value):
            raise SubmissionError(f"{where}: {field} {value} is not finite")
    if box.get("detection_name") not in DETECTION_CLASSES:
        raise SubmissionError(
            f"{where}: detection_name {box.get('detection_name')!r} is not one of {list(DETECTION_CLASSES)}"
        )
    score = box.get("detection_score")
    if not isinstance(score, (int, float)) or not np.isfinite(score):
        raise SubmissionError(f"{where}: detection_score {score!r} is not a finite number")
    if not isinstance(box.get("attribute_name"), str):
        raise SubmissionError(f"{where}: attribute_name must be a string ('' for none)")


def _score(
    reader: NuScenesReader,
    submission: dict,
    result_path: str | os.PathLike,
    eval_set: str,
    out_dir: str | os.PathLike,
    render_curves: bool,
) -> dict:
    """Run the devkit on `result_path`, whose parsed content is `submission`."""
    check_submission_boxes(submission, result_path)
    check_submission_covers_split(reader, submission, eval_set)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    evaluator = DetectionEval(
        reader.nusc,
        config=config_factory("detection_cvpr_2019"),
        result_path=str(result_path),
        eval_set=eval_set,
        output_dir=str(out),
        verbose=False,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # the devkit prints its own table; we print ours
        summary = evaluator.main(plot_examples=0, render_curves=render_curves)
    metrics = _flatten(summary)
    write_json_atomically(out / "metrics.json", metrics)
    return metrics


def evaluate_detections(
    reader: NuScenesReader,
    detections: Mapping[str, Detections],
    eval_set: str,
    out_dir: str | os.PathLike,
    classes: Sequence[str] = DETECTION_CLASSES,
    render_curves: bool = False,
) -> dict:
    """Write `out_dir/results_nusc.json` from in-memory detections and score it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / "results_nusc.json"
    submission = build_submission(reader, detections, classes)
    write_text_atomically(result_path, json.dumps(submission))
    return _score(reader, submission, result_path, eval_set, out, render_curves)


def format_metrics(metrics: dict) -> str:
    """A readable table: the headline metrics, then AP per class."""
    lines = [f"{key:<6} {metrics[key]:.4f}" for key in METRIC_KEYS]
    lines += [f"  AP {name:<22} {ap:.4f}" for name, ap in metrics["per_class_AP"].items()]
    return "\n".join(lines)
