"""Box <-> regression-code conversion and NMS-free decoding, as in DETR3D / BEVFormer.

Boxes are in the LiDAR frame as (x, y, z, w, l, h, yaw, vx, vy) with z the box centre. The network
regresses the 10-value code (cx, cy, log w, log l, cz, log h, sin yaw, cos yaw, vx, vy): sizes in log
space keep them positive and scale-balanced, and (sin, cos) avoids the discontinuity of yaw at +-pi.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

CODE_SIZE = 10
BOX_SIZE = 9


def encode_boxes(boxes: Tensor) -> Tensor:
    """(N, 9) boxes -> (N, 10) regression targets. Sizes must be positive (their log is taken)."""
    if boxes.shape[-1] != BOX_SIZE:
        raise ValueError(f"expected boxes (..., {BOX_SIZE}), got {tuple(boxes.shape)}")
    x, y, z, width, length, height, yaw, vx, vy = boxes.unbind(-1)
    return torch.stack(
        [x, y, width.log(), length.log(), z, height.log(), yaw.sin(), yaw.cos(), vx, vy],
        dim=-1,
    )


def decode_boxes(code: Tensor) -> Tensor:
    """(N, 10) regression code -> (N, 9) boxes; yaw = atan2(sin, cos) so it lies in (-pi, pi]."""
    if code.shape[-1] != CODE_SIZE:
        raise ValueError(f"expected code (..., {CODE_SIZE}), got {tuple(code.shape)}")
    x, y, log_w, log_l, z, log_h, sin_yaw, cos_yaw, vx, vy = code.unbind(-1)
    yaw = torch.atan2(sin_yaw, cos_yaw)
    return torch.stack([x, y, z, log_w.exp(), log_l.exp(), log_h.exp(), yaw, vx, vy], dim=-1)


def _range_tensors(pc_range: Sequence[float] | Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    pc = torch.as_tensor(pc_range, dtype=like.dtype, device=like.device)
    if pc.shape != (6,):
        raise ValueError(f"expected a range [x0, y0, z0, x1, y1, z1], got shape {tuple(pc.shape)}")
    return pc[:3], pc[3:]


def normalize_centers(xyz: Tensor, pc_range: Sequence[float] | Tensor) -> Tensor:
    """Metric (..., 3) centres -> [0, 1] of the point-cloud range, the space reference points live in.

    Not clamped: points outside the range map outside [0, 1], so the mapping stays invertible.
    """
    lo, hi = _range_tensors(pc_range, xyz)
    return (xyz - lo) / (hi - lo)


def denormalize_centers(xyz01: Tensor, pc_range: Sequence[float] | Tensor) -> Tensor:
    """Inverse of `normalize_centers`: [0, 1] reference points -> metric (..., 3) centres."""
    lo, hi = _range_tensors(pc_range, xyz01)
    return xyz01 * (hi - lo) + lo


def decode_topk(
    cls_logits: Tensor,
    code: Tensor,
    k: int,
    post_center_range: Sequence[float] | None = None,
) -> dict[str, Tensor]:
    """NMS-free decoding of one sample's queries, as DETR3D / BEVFormer's NMSFreeCoder.

    Scores are ranked over all (query, class) pairs, so one query can yield several detections of
    different classes; set-based training makes duplicates rare enough that no NMS is needed.
    Returns `boxes` (K, 9), `scores` (K,), `labels` (K,) and the `queries` (K,) they came from, sorted by
    descending score, with K <= k after dropping boxes whose centre lies outside `post_center_range`
    (bounds inclusive).
    """
    if cls_logits.dim() != 2 or code.dim() != 2 or code.shape != (cls_logits.shape[0], CODE_SIZE):
        raise ValueError(
            f"expected cls_logits (Q, C) and code (Q, {CODE_SIZE}), "
            f"got {tuple(cls_logits.shape)} and {tuple(code.shape)}"
        )
    num_classes = cls_logits.shape[1]
    scores_all = cls_logits.sigmoid().flatten()
    k = min(int(k), scores_all.numel())
    scores, index = scores_all.topk(k)
    labels = index % num_classes
    query = torch.div(index, num_classes, rounding_mode="floor")
    boxes = decode_boxes(code[query])
    if post_center_range is not None:
        lo, hi = _range_tensors(post_center_range, boxes)
        centers = boxes[:, :3]
        keep = ((centers >= lo) & (centers <= hi)).all(dim=1)
        boxes, scores, labels, query = boxes[keep], scores[keep], labels[keep], query[keep]
    return {"boxes": boxes, "scores": scores, "labels": labels, "queries": query}
