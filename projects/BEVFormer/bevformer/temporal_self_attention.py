"""Temporal self-attention: every BEV query samples the ego-aligned previous BEV and the current BEV.

The two maps are treated as a queue of two single-level values; offsets and weights are predicted from
the query concatenated with the aligned previous BEV at the same cell (so the attention can look for
where a moving object was), and the two results are averaged — BEVFormer's design.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fd3d.ops.deform_attn import (
    SpatialShapes,
    init_deformable_layers,
    multi_scale_deformable_attention,
    pixel_normalizer,
)

QUEUE = 2  # (aligned previous BEV, current BEV)


class TemporalSelfAttention(nn.Module):
    def __init__(self, embed_dims: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f"embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})")
        self.embed_dims, self.num_heads, self.num_points = embed_dims, num_heads, num_points
        self.sampling_offsets = nn.Linear(QUEUE * embed_dims, QUEUE * num_heads * num_points * 2)
        self.attention_weights = nn.Linear(QUEUE * embed_dims, QUEUE * num_heads * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        init_deformable_layers(
            self.sampling_offsets,
            self.attention_weights,
            self.value_proj,
            self.output_proj,
            num_heads,
            QUEUE,
            num_points,
        )

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor,
        values: Tensor,
        reference_2d: Tensor,
        bev_shape: SpatialShapes,
    ) -> Tensor:
        """query, query_pos (B, H*W, C); values (B, 2, H*W, C): the previous queue's map (the aligned
        previous BEV) and the current queue's; reference_2d (B, 2, H*W, 2) (x, y) in [0, 1] where each
        queue is sampled, or (H*W, 2) for both; bev_shape [(H, W)].

        Offsets and weights come from the previous queue's map next to query + query_pos. Returns
        (B, H*W, C) without residual.
        """
        batch, cells, dims = query.shape
        heads, points = self.num_heads, self.num_points
        fused = torch.cat([values[:, 0], query + query_pos], -1)
        value = self.value_proj(values.flatten(0, 1))  # (B*2, HW, C), batch-major
        value = value.view(batch * QUEUE, cells, heads, dims // heads)
        # (B, HW, M, 2, P, 2) -> (B*2, HW, M, 1, P, 2): the queue becomes the batch
        offsets = self.sampling_offsets(fused).view(batch, cells, heads, QUEUE, points, 2)
        offsets = offsets.permute(0, 3, 1, 2, 4, 5).reshape(batch * QUEUE, cells, heads, 1, points, 2)
        weights = self.attention_weights(fused).view(batch, cells, heads, QUEUE, points).softmax(-1)
        weights = weights.permute(0, 3, 1, 2, 4).reshape(batch * QUEUE, cells, heads, 1, points)
        normalizer = pixel_normalizer(bev_shape, query).view(1, 1, 1, 1, 1, 2)
        locations = reference_2d.reshape(-1, cells, 1, 1, 1, 2) + offsets / normalizer
        output = multi_scale_deformable_attention(value, bev_shape, locations, weights)
        return self.output_proj(output.view(batch, QUEUE, cells, dims).mean(1))
