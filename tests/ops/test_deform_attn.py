"""The grid_sample deformable attention equals a naive bilinear loop, in values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from fd3d.ops.deform_attn import MultiScaleDeformableAttention, multi_scale_deformable_attention


def _bilinear(feature: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """feature (D, H, W) at continuous (x, y) in [0, 1] (pixel centres at (i + 0.5) / size), zeros outside."""
    _, height, width = feature.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = math.floor(px.detach()), math.floor(py.detach())
    total = torch.zeros(feature.shape[0], dtype=feature.dtype)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (px - xi).abs()) * (1 - (py - yi).abs())
            if 0 <= xi < width and 0 <= yi < height:
                total = total + weight * feature[:, yi, xi]
    return total


def _naive(value, spatial_shapes, locations, weights):
    batch, _, heads, dims = value.shape
    _, queries, _, levels, points, _ = locations.shape
    starts = [0]
    for h, w in spatial_shapes.tolist():
        starts.append(starts[-1] + h * w)
    out = torch.zeros(batch, queries, heads, dims, dtype=value.dtype)
    for b in range(batch):
        for q in range(queries):
            for m in range(heads):
                acc = torch.zeros(dims, dtype=value.dtype)
                for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
                    feature = value[b, starts[lvl] : starts[lvl + 1], m].T.reshape(dims, h, w)
                    for p in range(points):
                        x, y = locations[b, q, m, lvl, p]
                        acc = acc + weights[b, q, m, lvl, p] * _bilinear(feature, x, y)
                out[b, q, m] = acc
    return out.flatten(2)


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[6, 8], [3, 4]])
    batch, queries, heads, dims, points = 2, 3, 2, 4, 3
    value = torch.randn(batch, int((shapes[:, 0] * shapes[:, 1]).sum()), heads, dims, generator=generator)
    # some locations fall outside [0, 1] to exercise the zero padding
    locations = torch.rand(batch, queries, heads, 2, points, 2, generator=generator) * 1.2 - 0.1
    weights = torch.rand(batch, queries, heads, 2, points, generator=generator).softmax(-1)
    return [
        t.double().requires_grad_() if t.is_floating_point() else t
        for t in (value, shapes, locations, weights)
    ]


def test_values_and_gradients_match_naive_loop(inputs):
    value, shapes, locations, weights = inputs
    fast = multi_scale_deformable_attention(value, shapes, locations, weights)
    slow = _naive(value, shapes, locations, weights)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(fast)
    grads_fast = torch.autograd.grad((fast * upstream).sum(), [value, locations, weights])
    grads_slow = torch.autograd.grad((slow * upstream).sum(), [value, locations, weights])
    for name, a, b in zip(("value", "locations", "weights"), grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8, msg=name)


def test_sampling_a_pixel_centre_reads_that_pixel():
    value = torch.arange(12.0).view(1, 12, 1, 1)  # one level 3 x 4, value = row-major index
    shapes = torch.tensor([[3, 4]])
    locations = torch.tensor([(2 + 0.5) / 4, (1 + 0.5) / 3]).view(1, 1, 1, 1, 1, 2)
    out = multi_scale_deformable_attention(value, shapes, locations, torch.ones(1, 1, 1, 1, 1))
    assert out.item() == pytest.approx(1 * 4 + 2)


def test_module_start_and_flops():
    torch.manual_seed(0)
    module = MultiScaleDeformableAttention(embed_dims=16, num_heads=4, num_levels=2, num_points=2)
    shapes = torch.tensor([[8, 8], [4, 4]])
    value = torch.randn(1, 80, 16)
    query = torch.randn(1, 5, 16)
    reference = torch.full((1, 5, 2, 2), 0.5)
    output, locations = module(query, reference, value, shapes)
    assert output.shape == (1, 5, 16) and locations.shape == (1, 5, 4, 2, 2, 2)
    # at initialisation head 0 looks along +x: point k sits k + 1 pixels right of the reference
    torch.testing.assert_close(locations[0, 0, 0, 0, :, 0], 0.5 + torch.tensor([1.0, 2.0]) / 8)
    torch.testing.assert_close(locations[0, 0, 0, 1, :, 0], 0.5 + torch.tensor([1.0, 2.0]) / 4)
    flops = FlopCountAnalysis(module, (query, reference, value, shapes))
    flops.unsupported_ops_warnings(False)
    assert flops.by_operator().get("grid_sampler", 0) > 0, "fvcore must count the sampling"


def test_wrong_level_count_is_named():
    module = MultiScaleDeformableAttention(embed_dims=8, num_heads=2, num_levels=2, num_points=1)
    with pytest.raises(ValueError, match="got 1 feature levels, the module was built for 2"):
        module(torch.randn(1, 2, 8), torch.rand(1, 2, 2, 2), torch.randn(1, 16, 8), torch.tensor([[4, 4]]))
