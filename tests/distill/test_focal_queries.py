"""Focal-query selection and the BEV GIoU it ranks with, against hand computation."""

from __future__ import annotations

import math

import torch

from fd3d.distill.focal_queries import bev_enclosing_rectangles, paired_bev_giou, select_focal_queries
from fd3d.modeling.box_coder import encode_boxes


def box(x, y, width, length, yaw=0.0):
    return [x, y, -1.0, width, length, 1.5, yaw, 0.0, 0.0]


def test_bev_giou_by_hand():
    a = torch.tensor([box(0, 0, 2, 2), box(0, 0, 2, 2), box(0, 0, 2, 2)])
    b = torch.tensor([box(0, 0, 2, 2), box(1, 0, 2, 2), box(4, 0, 2, 2)])
    giou = paired_bev_giou(a, b)
    # identical: 1; shifted by 1 m: IoU 2/6, hull 3x2 = union, so 1/3;
    # disjoint 4 m apart: IoU 0, hull 6x2 = 12, union 8 -> -(12 - 8) / 12
    torch.testing.assert_close(giou, torch.tensor([1.0, 1 / 3, -1 / 3]))


def test_rotation_turns_the_enclosing_rectangle():
    rect = bev_enclosing_rectangles(torch.tensor([box(1, 2, 2, 4, math.pi / 2)]))
    torch.testing.assert_close(rect, torch.tensor([[0.0, 0.0, 2.0, 4.0]]), atol=1e-6, rtol=0)


def test_focal_needs_a_match_confidence_and_overlap():
    gt = torch.tensor([box(5, 5, 2, 4), box(-5, 3, 2, 4)])
    predicted = torch.tensor([box(5, 5, 2, 4), box(20, 20, 2, 4), box(-5, 3, 2, 4), box(-5.0, 9, 2, 4)])
    code = encode_boxes(predicted)[None]
    logits = torch.full((1, 4, 3), -5.0)
    logits[0, 0, 1] = 3.0  # matched, confident, exact box -> focal
    logits[0, 1, 0] = 3.0  # confident but unmatched -> not focal
    logits[0, 2, 0] = -1.0  # matched, exact box, confidence 0.27 -> not focal at rho_c 0.3
    logits[0, 3, 2] = 3.0  # confident, matched to gt 1 below, but 6 m off -> GIoU < 0
    matches = [(torch.tensor([0, 3]), torch.tensor([0, 1]))]
    focal = select_focal_queries(logits, code, matches, [gt], conf_thresh=0.3, giou_thresh=0.3)
    assert focal.tolist() == [[True, False, False, False]]
    matches = [(torch.tensor([0, 2]), torch.tensor([0, 1]))]
    focal = select_focal_queries(logits, code, matches, [gt], conf_thresh=0.2, giou_thresh=0.3)
    assert focal.tolist() == [[True, False, True, False]]
