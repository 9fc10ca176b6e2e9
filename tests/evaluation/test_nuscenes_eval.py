"""Our submission writer plus the devkit's evaluator: perfect predictions score 1, noise costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyquaternion import Quaternion

from fd3d.data.nuscenes import NuScenesReader, decode_row
from fd3d.evaluation.nuscenes_eval import Detections, build_submission, evaluate_detections
from tests.conftest import PC_RANGE

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reader(mini_dataroot):
    return NuScenesReader(mini_dataroot, "v1.0-mini")


@pytest.fixture(scope="module")
def ground_truth(reader) -> dict[str, dict]:
    return {t: decode_row(reader.read_row(t), pc_range=PC_RANGE) for t in reader.sample_tokens("mini_val")}


def _as_detections(ground_truth, transform=lambda boxes: boxes) -> dict[str, Detections]:
    return {
        token: Detections(transform(s["gt_boxes"].copy()), np.ones(len(s["gt_boxes"])), s["gt_labels"])
        for token, s in ground_truth.items()
    }


def test_ground_truth_scores_perfect(reader, ground_truth, tmp_path):
    metrics = evaluate_detections(reader, _as_detections(ground_truth), "mini_val", tmp_path)
    assert metrics["NDS"] >= 0.99 and metrics["mAP"] >= 0.99
    assert all(ap >= 0.99 for ap in metrics["per_class_AP"].values())
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert set(written) == {"NDS", "mAP", "mATE", "mASE", "mAOE", "mAVE", "mAAE", "per_class_AP"}
    assert (tmp_path / "metrics_summary.json").is_file()


def test_nds_is_the_official_formula(reader, ground_truth, tmp_path):
    rng = np.random.default_rng(0)

    def jitter(boxes):
        boxes[:, :2] += rng.normal(0, 0.3, (len(boxes), 2))
        boxes[:, 7:9] += rng.normal(0, 0.5, (len(boxes), 2))
        return boxes

    m = evaluate_detections(reader, _as_detections(ground_truth, jitter), "mini_val", tmp_path)
    tp = [m[k] for k in ("mATE", "mASE", "mAOE", "mAVE", "mAAE")]
    assert m["NDS"] == pytest.approx((5 * m["mAP"] + sum(1 - min(1, e) for e in tp)) / 10)
    assert m["NDS"] < 0.95


@pytest.mark.parametrize(
    "name, transform, worse",
    [
        ("shifted 1.5 m", lambda b: b + np.r_[1.5, 0, 0, 0, 0, 0, 0, 0, 0], "mATE"),
        ("rotated 90 deg", lambda b: b + np.r_[0, 0, 0, 0, 0, 0, np.pi / 2, 0, 0], "mAOE"),
        ("scaled x1.5", lambda b: b * np.r_[1, 1, 1, 1.5, 1.5, 1.5, 1, 1, 1], "mASE"),
        ("velocity +3 m/s", lambda b: b + np.r_[0, 0, 0, 0, 0, 0, 0, 3, 0], "mAVE"),
    ],
)
def test_each_perturbation_costs_its_metric(reader, ground_truth, tmp_path, name, transform, worse):
    metrics = evaluate_detections(reader, _as_detections(ground_truth, transform), "mini_val", tmp_path)
    assert metrics[worse] > 0.2, name
    assert metrics["NDS"] < 0.95, name


def test_dropped_boxes_cost_map(reader, ground_truth, tmp_path):
    detections = _as_detections(ground_truth, lambda boxes: boxes)
    for dets in detections.values():
        keep = np.arange(len(dets.scores)) % 2 == 0
        dets.boxes_lidar, dets.scores, dets.labels = (
            dets.boxes_lidar[keep],
            dets.scores[keep],
            dets.labels[keep],
        )
    assert evaluate_detections(reader, detections, "mini_val", tmp_path)["mAP"] < 0.7


def test_missing_samples_are_named(reader, ground_truth, tmp_path):
    detections = _as_detections(ground_truth)
    detections.pop(next(iter(detections)))
    with pytest.raises(ValueError, match="predictions are missing for 1 of the 6 samples of 'mini_val'"):
        evaluate_detections(reader, detections, "mini_val", tmp_path)


def test_submission_reproduces_global_annotations(reader, ground_truth):
    """LiDAR-frame boxes written back to the global frame equal the annotation table's boxes."""
    token = next(iter(ground_truth))
    submission = build_submission(reader, {token: _as_detections(ground_truth)[token]})
    annotations = [reader.get("sample_annotation", t) for t in reader.get("sample", token)["anns"]]
    by_translation = {tuple(np.round(a["translation"], 5)): a for a in annotations}
    for box in submission["results"][token]:
        annotation = by_translation[tuple(np.round(box["translation"], 5))]
        angle = (Quaternion(box["rotation"]).inverse * Quaternion(annotation["rotation"])).angle
        assert abs(angle) < 1e-6
        np.testing.assert_allclose(box["size"], annotation["size"])
        np.testing.assert_allclose(
            box["velocity"], reader.nusc.box_velocity(annotation["token"])[:2], atol=1e-6
        )


def test_evaluate_cli_writes_metrics(mini_dataroot, reader, ground_truth, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(build_submission(reader, _as_detections(ground_truth))))
    command = [
        sys.executable,
        "tools/evaluate.py",
        "--dataroot",
        str(mini_dataroot),
        "--eval-set",
        "mini_val",
    ]
    command += ["--results", str(results), "--out", str(tmp_path / "e")]
    printed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT).stdout
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["NDS"] >= 0.99
    assert f"NDS    {metrics['NDS']:.4f}" in printed and "AP car" in printed
