"""QFD (Eq. 12-14): samples at shared positions, min-max normalised, squared error over focal queries."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d.distill.qfd import query_focal_distillation, sample_at


def _bilinear(feature: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """feature (C, H, W) at (x, y) in [0, 1], pixel centres at (i + 0.5) / size, zeros outside."""
    _, height, width = feature.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    total = torch.zeros(feature.shape[0], dtype=feature.dtype)
    for xi in (x0, x0 + 1):
        for yi in (y0, y0 + 1):
            if 0 <= xi < width and 0 <= yi < height:
                total = total + (1 - abs(px - xi)) * (1 - abs(py - yi)) * feature[:, yi, xi]
    return total


def _whole_query(samples, eps):
    """(M*K, C) samples min-max scaled over all their values (the default normalisation)."""
    return (samples - samples.min()) / (samples.max() - samples.min() + eps)


def _naive_qfd(expert, apprentice, locations, focal, eps, normalise=_whole_query):
    batch, queries, heads, points, _ = locations.shape
    total, count = 0.0, 0
    for b in range(batch):
        for q in range(queries):
            if not focal[b, q]:
                continue
            count += 1
            per_map = []
            for feature in (expert[b], apprentice[b]):
                samples = torch.stack(
                    [
                        _bilinear(feature, *locations[b, q, m, k].tolist())
                        for m in range(heads)
                        for k in range(points)
                    ]
                )
                per_map.append(normalise(samples, eps))
            total += ((per_map[0] - per_map[1]) ** 2).sum().item()
    return total / count


def test_hand_computed_value_on_a_2x2_map():
    expert = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    apprentice = torch.tensor([[0.0, 5.0], [2.0, 1.0]]).view(1, 1, 2, 2)
    # pixel centres as (x, y), x along W: (0.25, 0.25) -> [row 0, col 0], (0.75, 0.25) -> [0, 1],
    # (0.75, 0.75) -> [1, 1], (0.25, 0.75) -> [1, 0]
    locations = torch.tensor(
        [
            [[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75]]],  # query 0, focal
            [[[0.25, 0.25], [0.25, 0.25], [0.25, 0.25]]],  # query 1, not focal
            [[[0.25, 0.75], [0.25, 0.25], [0.25, 0.25]]],  # query 2, focal
        ]
    ).view(1, 3, 1, 3, 2)
    focal = torch.tensor([[True, False, True]])
    # query 0: expert 1, 2, 4 -> 0, 1/3, 1; apprentice 0, 5, 1 -> 0, 1, 0.2
    # query 2: expert 3, 1, 1 -> 1, 0, 0;   apprentice 2, 0, 0 -> 1, 0, 0
    expected = ((1 / 3 - 1) ** 2 + (1 - 0.2) ** 2 + 0.0) / 2
    samples = sample_at(expert, locations)
    assert samples[0, 0, 0, :, 0].tolist() == pytest.approx([1.0, 2.0, 4.0])
    loss = query_focal_distillation(expert, apprentice, locations, focal, eps=0.0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert query_focal_distillation(expert, apprentice, locations, focal).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_zero_when_apprentice_equals_expert():
    torch.manual_seed(0)
    expert = torch.randn(2, 4, 6, 7)
    locations, focal = torch.rand(2, 5, 2, 3, 2), torch.ones(2, 5, dtype=torch.bool)
    assert query_focal_distillation(expert, expert.clone(), locations, focal).item() == pytest.approx(
        0.0, abs=1e-10
    )


def test_no_focal_query_gives_exact_zero_and_finite_gradient():
    apprentice = torch.randn(1, 2, 3, 3, requires_grad=True)
    loss = query_focal_distillation(
        torch.randn(1, 2, 3, 3), apprentice, torch.rand(1, 4, 2, 2, 2), torch.zeros(1, 4, dtype=torch.bool)
    )
    assert loss.item() == 0.0
    loss.backward()
    assert apprentice.grad is not None and torch.isfinite(apprentice.grad).all()


def test_matches_naive_loop_in_float64():
    generator = torch.Generator().manual_seed(4)
    expert = torch.randn(2, 3, 5, 7, generator=generator, dtype=torch.float64)
    apprentice = torch.randn(2, 3, 5, 7, generator=generator, dtype=torch.float64)
    locations = (
        torch.rand(2, 4, 2, 3, 2, generator=generator, dtype=torch.float64) * 1.2 - 0.1
    )  # some outside
    focal = torch.tensor([[True, False, True, True], [False, True, False, False]])
    expected = _naive_qfd(expert, apprentice, locations, focal, 1e-6)
    loss = query_focal_distillation(expert, apprentice, locations, focal, eps=1e-6)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_gradient_reaches_apprentice_not_expert():
    torch.manual_seed(0)
    expert = torch.randn(1, 2, 4, 4, requires_grad=True)
    apprentice = torch.randn(1, 2, 4, 4, requires_grad=True)
    query_focal_distillation(
        expert, apprentice, torch.rand(1, 3, 2, 2, 2), torch.ones(1, 3, dtype=torch.bool)
    ).backward()
    assert expert.grad is None
    assert apprentice.grad is not None and apprentice.grad.abs().sum() > 0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"\(1, 2, 4, 4\).*\(1, 3, 4, 4\)"):
        query_focal_distillation(
            torch.zeros(1, 2, 4, 4),
            torch.zeros(1, 3, 4, 4),
            torch.rand(1, 3, 2, 2, 2),
            torch.ones(1, 3).bool(),
        )


def _per_channel(samples, eps):
    """(M*K, C) samples, each channel min-max scaled over its own M*K values, one column at a time."""
    columns = []
    for c in range(samples.shape[1]):
        column = samples[:, c]
        columns.append((column - column.min()) / (column.max() - column.min() + eps))
    return torch.stack(columns, 1)


def test_per_channel_normalisation_against_a_naive_loop():
    generator = torch.Generator().manual_seed(5)
    expert = torch.randn(2, 3, 5, 6, generator=generator)
    apprentice = torch.randn(2, 3, 5, 6, generator=generator) * 4.0 + 1.0
    locations = torch.rand(2, 4, 2, 3, 2, generator=generator)
    focal = torch.tensor([[True, False, True, True], [False, True, False, False]])
    loss = query_focal_distillation(expert, apprentice, locations, focal, eps=1e-6, normalize="channel")
    assert loss.item() == pytest.approx(
        _naive_qfd(expert, apprentice, locations, focal, 1e-6, _per_channel), rel=1e-5
    )
    # per channel differs from per query: one channel scaled by 100 dominates only the per-query min-max
    scaled = apprentice.clone()
    scaled[:, 0] *= 100.0
    per_channel = query_focal_distillation(expert, scaled, locations, focal, normalize="channel")
    assert per_channel.item() == pytest.approx(loss.item(), rel=1e-4)
    assert query_focal_distillation(expert, scaled, locations, focal).item() != pytest.approx(
        query_focal_distillation(expert, apprentice, locations, focal).item(), rel=1e-2
    )


def test_linear_adapter_equals_a_1x1_convolution_of_the_map_inside_it():
    """Inside the map, bilinear weights sum to one: sampling then a linear map = a 1x1 conv then sampling."""
    generator = torch.Generator().manual_seed(7)
    expert = torch.randn(1, 4, 8, 8, generator=generator)
    apprentice = torch.randn(1, 3, 4, 4, generator=generator)  # half the grid, other channels
    locations = 0.15 + 0.7 * torch.rand(1, 5, 2, 3, 2, generator=generator)  # away from the border
    focal = torch.tensor([[True, True, False, True, True]])
    adapter = torch.nn.Linear(3, 4)
    conv = torch.nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(adapter.weight[:, :, None, None])
        conv.bias.copy_(adapter.bias)
    for normalize in ("query", "channel"):
        adapted = query_focal_distillation(
            expert, apprentice, locations, focal, normalize=normalize, adapter=adapter
        )
        reference = query_focal_distillation(
            expert, conv(apprentice), locations, focal, normalize=normalize, adapter=torch.nn.Identity()
        )
        assert adapted.item() == pytest.approx(reference.item(), rel=1e-5)
    adapted.backward()
    assert adapter.weight.grad is not None and adapter.weight.grad.abs().sum() > 0


def test_unknown_normalisation_is_named():
    maps = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"normalize must be one of \('query', 'channel'\), got 'global'"):
        query_focal_distillation(maps, maps, torch.zeros(1, 1, 1, 1, 2), torch.ones(1, 1, dtype=torch.bool),
                                 normalize="global")  # fmt: skip
