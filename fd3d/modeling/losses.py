"""Set-prediction detection loss of DETR3D / BEVFormer: Hungarian matching, focal class loss, L1 box loss.

Every decoder layer is matched and supervised on its own (auxiliary losses), which is what lets a
from-scratch model learn quickly; both terms are normalised by the number of ground-truth boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from fvcore.nn import sigmoid_focal_loss
from torch import Tensor, nn

from fd3d.modeling.assigner import assign
from fd3d.modeling.box_coder import CODE_SIZE, encode_boxes
from fd3d.modeling.outputs import HeadOutputs


class DetectionLoss(nn.Module):
    """Per decoder layer: <prefix>_cls = w_cls · focal / N_gt and <prefix>_box = w_box · Σ w·|Δcode| / N_gt.

    It trains every DETR-style head of fd3d alike: the detectors' (prefix "loss") and the distillation
    head's (L_dh of Eq. 2, prefix "loss_dh"), both handing it a `HeadOutputs`.
    """

    def __init__(
        self,
        cls_weight: float = 2.0,
        box_weight: float = 0.25,
        alpha: float = 0.25,
        gamma: float = 2.0,
        code_weights: Sequence[float] = (1.0,) * 8 + (0.2, 0.2),
        prefix: str = "loss",
    ) -> None:
        super().__init__()
        if len(code_weights) != CODE_SIZE:
            raise ValueError(f"code_weights needs {CODE_SIZE} values, got {len(code_weights)}")
        self.cls_weight, self.box_weight = cls_weight, box_weight
        self.alpha, self.gamma, self.prefix = alpha, gamma, prefix
        self.register_buffer("code_weights", torch.tensor(code_weights, dtype=torch.float32), False)

    def match(
        self, cls_logits: Tensor, box_code: Tensor, gt_labels: Tensor, gt_code: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Hungarian matching of one sample with the same weights as the loss (focal + L1)."""
        return assign(
            cls_logits,
            box_code,
            gt_labels,
            gt_code,
            cls_weight=self.cls_weight,
            box_weight=self.box_weight,
            alpha=self.alpha,
            gamma=self.gamma,
            code_weights=self.code_weights,
        )

    def layer_loss(
        self, cls_logits: Tensor, box_code: Tensor, gt_boxes: list[Tensor], gt_labels: list[Tensor]
    ) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        """(B, Q, K) logits and (B, Q, 10) codes of one layer -> (focal loss, L1 loss), unweighted, and the
        per-sample matching (query_idx, gt_idx) they were computed with.

        Non-finite predictions (a diverged model) cannot be matched: both terms are then NaN and nothing
        is matched, so the caller's loss check names the terms instead of the matcher failing.
        """
        if not (torch.isfinite(cls_logits).all() & torch.isfinite(box_code).all()):  # one host sync
            return _unmatched(cls_logits, box_code)
        cls_targets = torch.zeros_like(cls_logits)
        l1_sum = box_code.new_zeros(())
        num_gt = 0
        matches = []
        for b, (boxes, labels) in enumerate(zip(gt_boxes, gt_labels, strict=True)):
            labels = labels.to(cls_logits.device).long()
            gt_code = encode_boxes(boxes.to(box_code))
            query_idx, gt_idx = self.match(cls_logits[b].detach(), box_code[b].detach(), labels, gt_code)
            matches.append((query_idx, gt_idx))
            cls_targets[b, query_idx, labels[gt_idx]] = 1.0
            target = gt_code[gt_idx]
            # Real annotations can lack a velocity (NaN): such entries are not supervised.
            valid = torch.isfinite(target)
            diff = (box_code[b, query_idx] - target.nan_to_num()).abs() * self.code_weights * valid
            l1_sum = l1_sum + diff.sum()
            num_gt += len(labels)
        normaliser = max(num_gt, 1)
        focal = sigmoid_focal_loss(cls_logits, cls_targets, self.alpha, self.gamma, reduction="sum")
        return focal / normaliser, l1_sum / normaliser, matches

    def losses_and_matches(
        self, outputs: HeadOutputs, gt_boxes: list[Tensor], gt_labels: list[Tensor]
    ) -> tuple[dict[str, Tensor], list[tuple[Tensor, Tensor]]]:
        """Named losses of every decoder layer of `outputs` (the last unsuffixed, layer l `_d<l>`: deep
        supervision) and the last layer's per-sample matching, which the distiller's focal queries use."""
        losses = {}
        num_layers = outputs.cls_logits.shape[0]
        for layer in range(num_layers):
            focal, l1, matches = self.layer_loss(
                outputs.cls_logits[layer], outputs.box_code[layer], gt_boxes, gt_labels
            )
            suffix = "" if layer == num_layers - 1 else f"_d{layer}"
            losses[f"{self.prefix}_cls{suffix}"] = self.cls_weight * focal
            losses[f"{self.prefix}_box{suffix}"] = self.box_weight * l1
        return losses, matches

    def forward(
        self, outputs: HeadOutputs, gt_boxes: list[Tensor], gt_labels: list[Tensor]
    ) -> dict[str, Tensor]:
        """Named losses for every decoder layer of `outputs`."""
        return self.losses_and_matches(outputs, gt_boxes, gt_labels)[0]


def _unmatched(cls_logits: Tensor, box_code: Tensor) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
    """NaN focal and L1 terms (still in the graph) and an empty matching per sample."""
    empty = torch.empty(0, dtype=torch.long, device=cls_logits.device)
    matches = [(empty, empty.clone()) for _ in range(cls_logits.shape[0])]
    nan = float("nan")
    return cls_logits.sum() * nan, box_code.sum() * nan, matches
