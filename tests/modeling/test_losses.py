"""Detection loss values against hand computation."""

from __future__ import annotations

import torch
from fvcore.nn import sigmoid_focal_loss

from fd3d.modeling.box_coder import encode_boxes
from fd3d.modeling.losses import DetectionLoss
from fd3d.modeling.outputs import HeadOutputs

GT = torch.tensor(
    [[5.0, 10.0, -1.0, 1.9, 4.6, 1.7, 0.3, 1.0, 0.5], [-8.0, 3.0, -0.5, 0.6, 0.7, 1.8, -2.0, 0.0, 0.0]]
)


def outputs_from(code: torch.Tensor, logits: torch.Tensor, layers: int = 2) -> HeadOutputs:
    return HeadOutputs(
        cls_logits=logits.expand(layers, *logits.shape), box_code=code.expand(layers, *code.shape)
    )


def test_box_loss_is_weighted_mean_abs_error_of_matched_queries():
    gt_code = encode_boxes(GT)
    code = torch.zeros(1, 4, 10)
    code[0, 1] = gt_code[1] + torch.tensor([0.5] + [0.0] * 7 + [1.0, 0.0])  # x off by 0.5, vx off by 1
    code[0, 3] = gt_code[0]
    code[0, [0, 2]] = gt_code[0] + 5.0  # far-away distractors
    logits = torch.full((1, 4, 3), -5.0)
    logits[0, 1, 2], logits[0, 3, 0] = 5.0, 5.0
    losses = DetectionLoss()(outputs_from(code, logits), [GT], [torch.tensor([0, 2])])
    # (1.0 * 0.5 + 0.2 * 1.0) / 2 gt, times box weight 0.25
    torch.testing.assert_close(losses["loss_box"], torch.tensor(0.25 * 0.7 / 2))
    targets = torch.zeros(1, 4, 3)
    targets[0, 1, 2] = targets[0, 3, 0] = 1.0
    expected_cls = 2.0 * sigmoid_focal_loss(logits, targets, 0.25, 2.0, reduction="sum") / 2
    torch.testing.assert_close(losses["loss_cls"], expected_cls)
    assert set(losses) == {"loss_cls", "loss_box", "loss_cls_d0", "loss_box_d0"}
    torch.testing.assert_close(losses["loss_box_d0"], losses["loss_box"])


def test_missing_velocity_is_not_supervised_and_empty_gt_gives_finite_loss():
    gt = GT.clone()
    gt[0, 7:] = float("nan")
    code = encode_boxes(GT).nan_to_num()[None]
    code = torch.cat([code, code + 3.0], 1)
    logits = torch.zeros(1, 4, 3)
    losses = DetectionLoss()(outputs_from(code, logits, 1), [gt], [torch.tensor([0, 1])])
    assert torch.isfinite(losses["loss_box"]) and losses["loss_box"] == 0
    empty = DetectionLoss()(
        outputs_from(code, logits, 1), [torch.zeros(0, 9)], [torch.zeros(0, dtype=torch.long)]
    )
    assert torch.isfinite(empty["loss_cls"]) and empty["loss_box"] == 0
