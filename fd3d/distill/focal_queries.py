"""Focal queries (Section 3.1): the distillation head's queries that found an object, and found it well.

A query is focal when Hungarian matching gave it a ground-truth box, its confidence (highest class
probability) exceeds rho_c and the GIoU of its box with that ground truth exceeds rho_b. GIoU is taken
on the bird's-eye view between the axis-aligned rectangles enclosing the two rotated footprints (fvcore's
`giou_loss`): a cheap, differentiable-free proxy that only ranks boxes here; our documented choice.
"""

from __future__ import annotations

import torch
from fvcore.nn import giou_loss
from torch import Tensor

from fd3d.modeling.box_coder import decode_boxes


def bev_enclosing_rectangles(boxes: Tensor) -> Tensor:
    """(N, >=7) boxes (x, y, z, w, l, h, yaw, ...) -> (N, 4) enclosing (x0, y0, x1, y1) of the footprint."""
    x, y, width, length, yaw = boxes[:, 0], boxes[:, 1], boxes[:, 3], boxes[:, 4], boxes[:, 6]
    cos, sin = yaw.cos().abs(), yaw.sin().abs()
    half_x = 0.5 * (length * cos + width * sin)
    half_y = 0.5 * (length * sin + width * cos)
    return torch.stack([x - half_x, y - half_y, x + half_x, y + half_y], -1)


def paired_bev_giou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """GIoU of box i of `a` with box i of `b` on the BEV (enclosing rectangles), in [-1, 1]."""
    if len(boxes_a) == 0:
        return boxes_a.new_zeros(0)
    rect_a, rect_b = bev_enclosing_rectangles(boxes_a), bev_enclosing_rectangles(boxes_b)
    return 1.0 - giou_loss(rect_a, rect_b, reduction="none")


@torch.no_grad()
def select_focal_queries(
    cls_logits: Tensor,
    box_code: Tensor,
    matches: list[tuple[Tensor, Tensor]],
    gt_boxes: list[Tensor],
    conf_thresh: float,
    giou_thresh: float,
) -> Tensor:
    """(B, Q, K) logits, (B, Q, 10) metric codes, per-sample (query_idx, gt_idx) -> focal mask (B, Q)."""
    focal = torch.zeros(cls_logits.shape[:2], dtype=torch.bool, device=cls_logits.device)
    confidence = cls_logits.sigmoid().amax(-1)
    for b, (query_idx, gt_idx) in enumerate(matches):
        if len(query_idx) == 0:
            continue
        predicted = decode_boxes(box_code[b, query_idx])
        giou = paired_bev_giou(predicted, gt_boxes[b][gt_idx].to(predicted))
        focal[b, query_idx] = (confidence[b, query_idx] > conf_thresh) & (giou > giou_thresh)
    return focal


def focal_boxes(box_code: Tensor, focal: Tensor) -> list[Tensor]:
    """Per sample, the decoded (N_f, 9) boxes of the focal queries of (B, Q, 10) codes: what SMGD masks."""
    return [decode_boxes(box_code[b][focal[b]]) for b in range(len(focal))]
