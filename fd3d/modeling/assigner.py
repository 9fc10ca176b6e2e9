"""One-to-one Hungarian matching of queries to ground truth, as in DETR3D / BEVFormer.

The matching cost is a focal classification cost plus an L1 cost on the regression code; the L1 part
uses only the first 8 code values (centre, log sizes, sin/cos yaw) because velocity targets are
missing for some boxes and noisy early in training, so the references leave them out of matching.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

DEFAULT_L1_DIMS = slice(0, 8)


def focal_class_cost(
    cls_logits: Tensor,
    gt_labels: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    eps: float = 1e-8,
) -> Tensor:
    """(Q, C) logits, (G,) labels -> (Q, G) cost, Deformable-DETR's focal matching cost.

    It is the focal loss of predicting the gt class minus that of not predicting it, so the cost is
    consistent with the sigmoid focal loss the matched queries are then trained with.
    """
    prob = cls_logits.sigmoid()
    neg = (1 - alpha) * prob.pow(gamma) * -(1 - prob + eps).log()
    pos = alpha * (1 - prob).pow(gamma) * -(prob + eps).log()
    return (pos - neg)[:, gt_labels.long()]


def l1_box_cost(
    pred_code: Tensor,
    gt_code: Tensor,
    code_weights: Tensor | None = None,
    dims: slice = DEFAULT_L1_DIMS,
) -> Tensor:
    """(Q, 10), (G, 10) codes -> (Q, G) weighted L1 distance over `dims` (velocity excluded by default).

    Weights are applied by scaling both codes, which equals sum_i w_i |a_i - b_i| for w_i >= 0.
    """
    pred = pred_code[:, dims]
    gt = gt_code[:, dims].to(pred.dtype)
    if code_weights is not None:
        w = torch.as_tensor(code_weights, dtype=pred.dtype, device=pred.device)[dims]
        if (w < 0).any():
            raise ValueError("code_weights must be non-negative")
        pred, gt = pred * w, gt * w
    if gt.shape[0] == 0 or pred.shape[0] == 0:
        return pred.new_zeros((pred.shape[0], gt.shape[0]))
    return torch.cdist(pred, gt, p=1)


def hungarian_assign(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one matching of a (Q, G) cost with G <= Q (every gt gets one query).

    Returns (query_idx, gt_idx) LongTensors of length G on the cost's device, sorted by query index.
    Non-finite costs raise: scipy would either fail obscurely or return a meaningless matching.
    """
    if cost.dim() != 2:
        raise ValueError(f"expected a (Q, G) cost matrix, got shape {tuple(cost.shape)}")
    num_queries, num_gts = cost.shape
    device = cost.device
    if num_gts == 0:
        empty = torch.empty(0, dtype=torch.long, device=device)
        return empty, empty.clone()
    if num_gts > num_queries:
        raise ValueError(f"more ground-truth boxes ({num_gts}) than queries ({num_queries})")
    if not torch.isfinite(cost).all():
        raise ValueError("cost matrix contains NaN or inf; check predictions and targets")
    rows, cols = linear_sum_assignment(cost.detach().to("cpu", torch.float64).numpy())
    return (
        torch.as_tensor(rows, dtype=torch.long, device=device),
        torch.as_tensor(cols, dtype=torch.long, device=device),
    )


@torch.no_grad()
def assign(
    cls_logits: Tensor,
    pred_code: Tensor,
    gt_labels: Tensor,
    gt_code: Tensor,
    cls_weight: float = 2.0,
    box_weight: float = 0.25,
    alpha: float = 0.25,
    gamma: float = 2.0,
    code_weights: Tensor | None = None,
    dims: slice = DEFAULT_L1_DIMS,
) -> tuple[Tensor, Tensor]:
    """Match one sample's queries to its gt boxes with cost = cls_weight * focal + box_weight * L1.

    Matching is a discrete decision, so no gradient flows through it. Returns (query_idx, gt_idx).
    """
    if gt_labels.numel() == 0:
        empty = torch.empty(0, dtype=torch.long, device=cls_logits.device)
        return empty, empty.clone()
    cost = cls_weight * focal_class_cost(cls_logits, gt_labels, alpha, gamma) + box_weight * l1_box_cost(
        pred_code, gt_code, code_weights, dims
    )
    return hungarian_assign(cost)
