"""Box coder: exact round trips, a hand-computed code, and NMS-free top-k decoding."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d.modeling.box_coder import (
    decode_boxes,
    decode_topk,
    denormalize_centers,
    encode_boxes,
    normalize_centers,
)

PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.atan2(angle.sin(), angle.cos())


def test_round_trip_random_boxes_including_yaw_near_pi():
    gen = torch.Generator().manual_seed(0)
    n = 64
    boxes = torch.empty(n, 9, dtype=torch.float64)
    boxes[:, :3] = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 100 - 50
    boxes[:, 3:6] = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 10 + 0.1
    boxes[:, 6] = torch.rand(n, generator=gen, dtype=torch.float64) * 2 * math.pi - math.pi
    boxes[:, 7:] = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    boxes[:4, 6] = torch.tensor([math.pi - 1e-6, -math.pi + 1e-6, math.pi, 3 * math.pi / 2])
    decoded = decode_boxes(encode_boxes(boxes))
    assert decoded.shape == (n, 9)
    torch.testing.assert_close(decoded[:, :6], boxes[:, :6])
    torch.testing.assert_close(decoded[:, 7:], boxes[:, 7:])
    # yaw comes back wrapped to (-pi, pi]; compare on the circle
    yaw_err = _wrap(decoded[:, 6] - boxes[:, 6]).abs()
    assert yaw_err.max().item() < 1e-9
    assert decoded[:, 6].abs().max().item() <= math.pi + 1e-12
    # 3*pi/2 wraps to -pi/2
    assert decoded[3, 6].item() == pytest.approx(-math.pi / 2)


def test_encode_one_box_by_hand():
    box = torch.tensor([[1.0, 2.0, 3.0, 2.0, 4.0, 1.5, math.pi / 2, 0.5, -1.0]], dtype=torch.float64)
    expected = torch.tensor(
        [[1.0, 2.0, math.log(2.0), math.log(4.0), 3.0, math.log(1.5), 1.0, 0.0, 0.5, -1.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(encode_boxes(box), expected)


def test_encode_rejects_wrong_width():
    with pytest.raises(ValueError):
        encode_boxes(torch.zeros(2, 7))
    with pytest.raises(ValueError):
        decode_boxes(torch.zeros(2, 9))


def test_normalize_denormalize_round_trip():
    lo = torch.tensor(PC_RANGE[:3])
    hi = torch.tensor(PC_RANGE[3:])
    torch.testing.assert_close(normalize_centers(lo[None], PC_RANGE), torch.zeros(1, 3))
    torch.testing.assert_close(normalize_centers(hi[None], PC_RANGE), torch.ones(1, 3))
    torch.testing.assert_close(
        normalize_centers(torch.tensor([[0.0, 25.6, -1.0]]), PC_RANGE), torch.tensor([[0.5, 0.75, 0.5]])
    )
    xyz = torch.rand(5, 7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 120 - 60
    back = denormalize_centers(normalize_centers(xyz, PC_RANGE), PC_RANGE)
    torch.testing.assert_close(back, xyz)


def test_decode_topk_hand_made():
    # sigmoid is monotone, so the ranking of (query, class) pairs is the ranking of the logits:
    # 3.0 (q1, c1) > 2.0 (q0, c0) > 1.0 (q2, c1) > 0.0 (q1, c0) > -1.0 > -2.0
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0], [-2.0, 1.0]])
    boxes = torch.tensor(
        [
            [1.0, 2.0, 0.0, 1.8, 4.5, 1.6, 0.3, 1.0, 0.0],
            [-10.0, 5.0, -1.0, 0.6, 0.8, 1.7, -2.0, 0.0, 0.5],
            [70.0, 0.0, 0.0, 2.0, 5.0, 2.0, 1.0, 0.0, 0.0],  # centre x outside the post-centre range
        ]
    )
    code = encode_boxes(boxes)

    out = decode_topk(logits, code, k=3, post_center_range=None)
    assert out["labels"].tolist() == [1, 0, 1]
    torch.testing.assert_close(out["scores"], torch.tensor([3.0, 2.0, 1.0]).sigmoid())
    torch.testing.assert_close(out["boxes"], boxes[[1, 0, 2]], rtol=1e-5, atol=1e-5)

    post = (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)
    out = decode_topk(logits, code, k=3, post_center_range=post)
    assert out["labels"].tolist() == [1, 0]
    torch.testing.assert_close(out["scores"], torch.tensor([3.0, 2.0]).sigmoid())
    torch.testing.assert_close(out["boxes"], boxes[[1, 0]], rtol=1e-5, atol=1e-5)

    # k larger than Q*C is capped; the fourth pick is query 1 again with class 0
    out = decode_topk(logits, code, k=100)
    assert out["labels"].tolist() == [1, 0, 1, 0, 1, 0]
    torch.testing.assert_close(out["boxes"][3], boxes[1], rtol=1e-5, atol=1e-5)
