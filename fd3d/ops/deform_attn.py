"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch.

No compiled CUDA op: every level is sampled with bilinear `F.grid_sample`, which runs on any device and
which fvcore's FlopCountAnalysis counts (`aten::grid_sampler`). The module returns its sampling
locations too, because query-based focal distillation (QFD, Eq. 12-13) samples the expert and the
apprentice at exactly those positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (H_l, W_l) per level: a (L, 2) tensor or, better, Python ints (see `level_shapes`)
SpatialShapes = Tensor | Sequence[Sequence[int]]


def level_shapes(spatial_shapes: SpatialShapes) -> list[tuple[int, int]]:
    """(H_l, W_l) of every level as Python ints. Callers that know the shapes in Python pass them as a
    sequence: a tensor must be read back (`.tolist()`), which `torch.export` (ONNX export) cannot trace
    and which synchronises a GPU."""
    rows = spatial_shapes.tolist() if isinstance(spatial_shapes, Tensor) else spatial_shapes
    return [(int(h), int(w)) for h, w in rows]


def pixel_normalizer(spatial_shapes: SpatialShapes, like: Tensor) -> Tensor:
    """(L, 2) tensor of (W_l, H_l): divides pixel offsets into [0, 1] displacements of each level."""
    return torch.tensor(
        [(w, h) for h, w in level_shapes(spatial_shapes)], dtype=like.dtype, device=like.device
    )


def multi_scale_deformable_attention(
    value: Tensor, spatial_shapes: SpatialShapes, sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Weighted sum of bilinear samples of a multi-level feature.

    value: (B, S, M, D) with S = sum of H_l * W_l over levels (row-major per level);
    spatial_shapes: (L, 2) as (H_l, W_l); sampling_locations: (B, Q, M, L, P, 2) as (x, y) in [0, 1]
    of each level (pixel centres at (i + 0.5) / size); attention_weights: (B, Q, M, L, P).
    Returns (B, Q, M * D). Samples outside the map read zeros.
    """
    batch, _, heads, dims = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    shapes = level_shapes(spatial_shapes)
    value_levels = value.split([height * width for height, width in shapes], dim=1)
    grids = 2.0 * sampling_locations - 1.0
    sampled = []
    for level, (height, width) in enumerate(shapes):
        # (B, H*W, M, D) -> (B*M, D, H, W)
        level_value = value_levels[level].permute(0, 2, 3, 1).reshape(batch * heads, dims, height, width)
        # (B, Q, M, P, 2) -> (B*M, Q, P, 2)
        level_grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    # (B*M, D, Q, L*P) weighted by (B*M, 1, Q, L*P)
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    output = (stacked * weights).sum(-1).view(batch, heads * dims, queries)
    return output.transpose(1, 2).contiguous()


def directional_offsets(num_heads: int, num_levels: int, num_points: int) -> Tensor:
    """(M, L, P, 2) pixel offsets of Deformable DETR's start: head m looks along 2πm/M, point k at k + 1.

    Spreading heads over directions gives every query a ring of samples from the first step on.
    """
    angles = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    directions = torch.stack([angles.cos(), angles.sin()], -1)
    directions = directions / directions.abs().max(-1, keepdim=True).values
    offsets = directions.view(num_heads, 1, 1, 2).repeat(1, num_levels, num_points, 1)
    return offsets * torch.arange(1, num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)


def init_sampling_offsets(linear: nn.Linear, num_heads: int, num_levels: int, num_points: int) -> None:
    """Zero weights and directional bias: every query starts with the same ring of offsets."""
    nn.init.zeros_(linear.weight)
    bias = directional_offsets(num_heads, num_levels, num_points).flatten()
    if linear.bias.numel() % bias.numel():
        raise ValueError(f"offset layer has {linear.bias.numel()} outputs, not a multiple of {bias.numel()}")
    with torch.no_grad():
        linear.bias.copy_(bias.repeat(linear.bias.numel() // bias.numel()))


def init_deformable_layers(
    sampling_offsets: nn.Linear,
    attention_weights: nn.Linear,
    value_proj: nn.Linear,
    output_proj: nn.Linear,
    num_heads: int,
    num_levels: int,
    num_points: int,
) -> None:
    """Deformable DETR's start for any deformable attention: the directional ring of offsets, uniform
    attention weights (zero logits), Xavier projections with zero bias."""
    init_sampling_offsets(sampling_offsets, num_heads, num_levels, num_points)
    nn.init.zeros_(attention_weights.weight)
    nn.init.zeros_(attention_weights.bias)
    for linear in (value_proj, output_proj):
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)


class MultiScaleDeformableAttention(nn.Module):
    """Each query looks at `num_points` learned offsets around its reference point on every level.

    forward(query (B, Q, C), reference_points (B, Q, L, 2) in [0, 1], value (B, S, C), spatial_shapes
    ((H_l, W_l) per level)) -> (output (B, Q, C), sampling_locations (B, Q, M, L, P, 2)). No residual:
    callers add it.
    Offsets are in pixels of each level, unless `offset_transform` (B, Q, 2, 2) maps each query's raw
    offsets to [0, 1] displacements (the same for every level): Deformable DETR's box-reference mode.
    """

    def __init__(
        self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 4
    ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f"embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})")
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_deformable_layers(
            self.sampling_offsets,
            self.attention_weights,
            self.value_proj,
            self.output_proj,
            self.num_heads,
            self.num_levels,
            self.num_points,
        )

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value: Tensor,
        spatial_shapes: SpatialShapes,
        offset_transform: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        batch, queries, _ = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        shapes = level_shapes(spatial_shapes)
        if len(shapes) != levels:
            raise ValueError(f"got {len(shapes)} feature levels, the module was built for {levels}")
        value = self.value_proj(value).view(batch, value.shape[1], heads, self.embed_dims // heads)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points).softmax(-1)
        weights = weights.view(batch, queries, heads, levels, points)
        if offset_transform is None:  # offsets in pixels of each level: divide by (W, H)
            normalizer = pixel_normalizer(shapes, query).view(1, 1, 1, levels, 1, 2)
            displacement = offsets / normalizer
        else:
            displacement = torch.einsum("bqij,bqmlpj->bqmlpi", offset_transform, offsets)
        locations = reference_points[:, :, None, :, None, :] + displacement
        output = multi_scale_deformable_attention(value, shapes, locations, weights)
        return self.output_proj(output), locations
