"""Hungarian assigner: costs against naive loops, matchings against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from fd3d.modeling.assigner import assign, focal_class_cost, hungarian_assign, l1_box_cost


def _brute_force(cost: list[list[float]]) -> tuple[float, list[tuple[int, int]]]:
    """Minimum over every injective map gt -> query; returns (total, sorted (query, gt) pairs)."""
    num_q, num_g = len(cost), len(cost[0])
    best = (math.inf, [])
    for queries in itertools.permutations(range(num_q), num_g):
        total = sum(cost[q][g] for g, q in enumerate(queries))
        if total < best[0]:
            best = (total, sorted((q, g) for g, q in enumerate(queries)))
    return best


def test_focal_cost_matches_elementwise_loop():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=gen, dtype=torch.float64) * 3
    labels = torch.tensor([2, 0, 2])
    alpha, gamma, eps = 0.25, 2.0, 1e-8
    cost = focal_class_cost(logits, labels, alpha=alpha, gamma=gamma, eps=eps)
    assert cost.shape == (5, 3)
    for q in range(5):
        for g, c in enumerate(labels.tolist()):
            p = 1.0 / (1.0 + math.exp(-logits[q, c].item()))
            neg = (1 - alpha) * p**gamma * -math.log(1 - p + eps)
            pos = alpha * (1 - p) ** gamma * -math.log(p + eps)
            assert cost[q, g].item() == pytest.approx(pos - neg, rel=1e-9, abs=1e-12)
    # a more confident query for the gt class must be cheaper
    assert focal_class_cost(torch.tensor([[3.0], [-3.0]]), torch.tensor([0]))[:, 0].argmin().item() == 0


@pytest.mark.parametrize("weighted", [False, True])
def test_l1_cost_matches_naive_loop(weighted):
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    gt = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    weights = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2], dtype=torch.float64)
    if weighted:
        weights[2] = 3.0
    cost = l1_box_cost(pred, gt, code_weights=weights if weighted else None)
    assert cost.shape == (6, 3)
    for q in range(6):
        for g in range(3):
            w = weights if weighted else torch.ones(10, dtype=torch.float64)
            expected = sum(w[i].item() * abs(pred[q, i].item() - gt[g, i].item()) for i in range(8))
            assert cost[q, g].item() == pytest.approx(expected, rel=1e-9)


def test_l1_cost_ignores_velocity():
    pred = torch.zeros(1, 10)
    gt = torch.zeros(1, 10)
    gt[0, 8:] = 100.0
    assert l1_box_cost(pred, gt).item() == 0.0


def test_hungarian_square_against_brute_force():
    # greedy (row-wise minimum) would pick (0, 0) = 1 and be forced into a worse total
    cost = [[1.0, 2.0, 9.0], [2.0, 9.0, 9.0], [9.0, 3.0, 4.0]]
    total, pairs = _brute_force(cost)
    q_idx, g_idx = hungarian_assign(torch.tensor(cost))
    assert q_idx.dtype == torch.long and g_idx.dtype == torch.long
    assert list(zip(q_idx.tolist(), g_idx.tolist(), strict=True)) == pairs == [(0, 1), (1, 0), (2, 2)]
    assert total == pytest.approx(8.0)


def test_hungarian_rectangular_against_brute_force():
    cost = [[4.0, 1.0], [2.0, 0.5], [3.0, 7.0], [0.5, 6.0]]
    total, pairs = _brute_force(cost)
    q_idx, g_idx = hungarian_assign(torch.tensor(cost))
    assert len(q_idx) == 2
    assert list(zip(q_idx.tolist(), g_idx.tolist(), strict=True)) == pairs == [(1, 1), (3, 0)]
    assert total == pytest.approx(1.0)


def test_hungarian_no_gt_returns_empty():
    q_idx, g_idx = hungarian_assign(torch.zeros(7, 0))
    assert q_idx.shape == (0,) and g_idx.shape == (0,)
    assert q_idx.dtype == torch.long and g_idx.dtype == torch.long


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_hungarian_non_finite_raises(bad):
    cost = torch.ones(3, 2)
    cost[1, 0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        hungarian_assign(cost)


def test_hungarian_more_gts_than_queries_raises():
    with pytest.raises(ValueError, match="more ground-truth"):
        hungarian_assign(torch.zeros(2, 3))


def test_assign_recovers_planted_matching():
    num_classes = 3
    gen = torch.Generator().manual_seed(2)
    gt_code = torch.randn(3, 10, generator=gen)
    gt_labels = torch.tensor([2, 0, 1])
    # queries 4, 1, 6 are exact, confident copies of gts 0, 1, 2; the rest are far off and unsure
    pred_code = torch.randn(8, 10, generator=gen) * 0.1 + 20.0
    logits = torch.full((8, num_classes), -4.0)
    for q, g in [(4, 0), (1, 1), (6, 2)]:
        pred_code[q] = gt_code[g]
        logits[q, gt_labels[g]] = 4.0
    q_idx, g_idx = assign(logits, pred_code, gt_labels, gt_code)
    assert list(zip(q_idx.tolist(), g_idx.tolist(), strict=True)) == [(1, 1), (4, 0), (6, 2)]

    empty_q, empty_g = assign(logits, pred_code, torch.zeros(0, dtype=torch.long), torch.zeros(0, 10))
    assert empty_q.numel() == 0 and empty_g.numel() == 0
