"""Distillation diagnostics against hand computation: gradient norms, QFD points on objects, ray artefacts."""

from __future__ import annotations

import math

import torch

from fd3d.distill.diagnostics import (
    feature_gradient_norms,
    qfd_points_on_objects,
    ray_artifact_index,
    recording_features,
    term_groups,
)
from fd3d.distill.distill_head import DistillHeadOutputs
from fd3d.modeling.outputs import CameraGeometry, DetectorFeatures

PC_RANGE = torch.tensor([-50.0, -50.0, -5.0, 50.0, 50.0, 3.0])
EXTENT = (-50.0, -50.0, 50.0, 50.0)


def car(x, y, yaw=0.0, width=2.0, length=4.0):
    return [x, y, -1.0, width, length, 1.5, yaw, 0.0, 0.0]


def unit(x, y):
    """Metric (x, y) -> [0, 1] of the 100 m x 100 m BEV."""
    return [(x + 50.0) / 100.0, (y + 50.0) / 100.0]


def test_term_groups_and_gradient_norms_by_hand():
    pv = torch.ones(1, 6, 2, 3, 4, requires_grad=True)
    bev = torch.full((1, 2, 5, 5), 3.0, requires_grad=True)
    features = DetectorFeatures(
        [pv], [8], CameraGeometry(torch.eye(4).expand(1, 6, 4, 4), (32, 64)), bev, EXTENT
    )
    losses = {
        "loss_cls": (2.0 * pv).sum(),  # d/dpv = 2 everywhere
        "loss_box": (bev**2).sum() * 0.5,  # d/dbev = bev = 3
        "loss_kd_fitnet_bev": (bev * 4.0).sum(),
        "loss_dh_cls": pv.sum() * 100.0,  # the head's loss never reaches the apprentice: not a group
        "num_focal_queries": torch.tensor(3.0),
    }
    assert set(term_groups(losses)) == {"detection", "fitnet_bev"}
    norms = feature_gradient_norms(losses, features)
    assert math.isclose(norms["detection"]["pv"], 2.0 * math.sqrt(pv.numel()), rel_tol=1e-6)
    assert math.isclose(norms["detection"]["bev"], 3.0 * math.sqrt(bev.numel()), rel_tol=1e-6)
    assert norms["fitnet_bev"]["pv"] == 0.0
    assert math.isclose(norms["fitnet_bev"]["bev"], 4.0 * math.sqrt(bev.numel()), rel_tol=1e-6)


def test_recording_features_restores_the_method():
    class Detector(torch.nn.Module):
        def extract_features(self, batch):
            return batch * 2

    detector = Detector()
    with recording_features(detector) as records:
        assert detector.extract_features(3) == 6
    assert records == [6]
    assert "extract_features" not in vars(detector)


def test_qfd_points_on_objects_counts_focal_queries_only():
    gt = torch.tensor([car(10.0, 0.0), car(-20.0, 5.0, yaw=math.pi / 2)])
    # query 0 (focal, matched to gt 0): 3 of 4 samples in the 4 m x 2 m car at (10, 0)
    # query 1 (focal, matched to gt 1, turned 90 deg: 2 m across x, 4 m along y): 1 of 4 inside
    # query 2 (matched, not focal): all inside, must not count
    points = [
        [unit(10.0, 0.0), unit(11.9, 0.9), unit(8.1, -0.9), unit(12.5, 0.0)],
        [unit(-20.0, 6.9), unit(-18.5, 5.0), unit(-20.0, 8.0), unit(-22.0, 5.0)],
        [unit(10.0, 0.0)] * 4,
    ]
    locations = torch.tensor(points)[None, :, None]  # (1, Q=3, M=1, K=4, 2)
    head = DistillHeadOutputs(torch.zeros(1, 3, 10), torch.zeros(1, 3, 10), locations)
    focal = torch.tensor([[True, True, False]])
    matches = [(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0]))]
    assert qfd_points_on_objects(head, focal, matches, [gt], PC_RANGE) == (4, 8)


def test_ray_artifact_index_sees_a_smear_behind_objects_and_not_without():
    size = 100  # 1 m cells
    flat = torch.ones(1, 4, size, size)
    boxes = [torch.tensor([car(20.0, 0.0), car(0.0, -25.0, yaw=math.pi / 2)])]
    behind, background = ray_artifact_index(flat, boxes, EXTENT)
    assert math.isclose(behind / background, 1.0, rel_tol=1e-5)

    smeared = flat.clone()
    smeared[..., 48:53, 72:83] = 5.0  # x 22..32 m, y -2..2 m: the 2-10 m behind the car at (20, 0)
    smeared[..., 17:28, 48:53] = 5.0  # y -33..-23 m behind the car at (0, -25)
    behind, background = ray_artifact_index(smeared, boxes, EXTENT)
    assert behind / background > 3.0
