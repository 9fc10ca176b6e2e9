"""Spatial cross-attention: BEV pillars look into the cameras they project into, and only those.

Each BEV cell carries Z reference points up its pillar. They are projected with `lidar2img`; a camera is
"hit" by a cell when any of its points lands in front of it and inside the image. Per camera, only the
hit cells are gathered (padded to the busiest camera), attend with deformable sampling around their
projected points on every FPN level, and are scattered back; a cell's result is the mean over the
cameras it hits. This is what keeps BEVFormer affordable: about a sixth of the cell-camera pairs.

An exported graph cannot size a tensor by the data. It gathers `export_slots` cells per camera, a number
fixed at export from the rig it was exported with plus a margin (`BEVFormer.size_export_slots`), and
counts in `dropped` the hit cells a rig would need beyond them (the host refuses such a frame); without
`export_slots` it keeps every cell for every camera, masked (about 4x the work).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fd3d.modeling.projection import project_to_images
from fd3d.ops.deform_attn import (
    SpatialShapes,
    init_deformable_layers,
    multi_scale_deformable_attention,
    pixel_normalizer,
)


def project_pillars(pillars: Tensor, lidar2img: Tensor, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """pillars (HW, Z, 3) LiDAR points -> uv in [0, 1] (B, Ncam, HW, Z, 2) and hit (B, Ncam, HW, Z)."""
    cells, num_z, _ = pillars.shape
    flat = pillars.reshape(1, cells * num_z, 3).expand(lidar2img.shape[0], -1, -1)
    uv, hit = project_to_images(flat, lidar2img, image_size)
    return uv.unflatten(2, (cells, num_z)), hit.unflatten(2, (cells, num_z))


class SpatialCrossAttention(nn.Module):
    def __init__(self, embed_dims: int, num_heads: int, num_levels: int, num_points: int, num_z: int) -> None:
        super().__init__()
        if num_points % num_z:
            raise ValueError(f"SCA_POINTS ({num_points}) must be a multiple of NUM_Z_ANCHORS ({num_z})")
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points, self.num_z = num_levels, num_points, num_z
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        init_deformable_layers(
            self.sampling_offsets,
            self.attention_weights,
            self.value_proj,
            self.output_proj,
            num_heads,
            num_levels,
            num_points,
        )
        self.export_slots: int | None = None  # cells gathered per camera in an exported graph
        # hit cells beyond export_slots in the last frame (0 in eager mode: every hit cell is gathered); a
        # buffer, so an exported graph carries the count it computes, not a traced attribute
        self.register_buffer("dropped", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor | None,
        value: Tensor,
        spatial_shapes: SpatialShapes,
        uv: Tensor,
        hit: Tensor,
    ) -> Tensor:
        """query, query_pos (B, HW, C) (query_pos None: offsets from the query alone, as officially);
        value (B*Ncam, S, C) all levels flattened; spatial_shapes (H_l, W_l) per level; uv (B, Ncam, HW, Z, 2)
        and hit (B, Ncam, HW, Z) from `project_pillars`. Returns (B, HW, C)."""
        batch, cams, cells, num_z = hit.shape
        dims, heads, levels, points = self.embed_dims, self.num_heads, self.num_levels, self.num_points
        hit_cells = hit.any(-1)  # (B, Ncam, HW)
        counts = hit_cells.sum(-1)  # (B, Ncam)
        # An exported graph cannot size a tensor by the data: export_slots cells, or every cell (masked).
        if torch.compiler.is_exporting():
            slots = min(self.export_slots or cells, cells)
            self.dropped.copy_((counts - slots).clamp(min=0).sum())
        else:
            slots = max(int(counts.max()), 1)
            self.dropped.zero_()
        # hit cells first, each group in cell order (unique keys: no stable sort needed, which ONNX lacks)
        order_key = (~hit_cells).long() * cells + torch.arange(cells, device=hit.device)
        index = torch.argsort(order_key, dim=-1)[..., :slots]
        valid = torch.arange(slots, device=hit.device).view(1, 1, slots) < counts[..., None]

        q = (query if query_pos is None else query + query_pos)[:, None].expand(batch, cams, cells, dims)
        q = torch.gather(q, 2, index[..., None].expand(-1, -1, -1, dims)).flatten(0, 1)  # (B*Ncam, N, C)
        ref = torch.gather(uv, 2, index[..., None, None].expand(-1, -1, -1, num_z, 2)).flatten(0, 1)

        offsets = self.sampling_offsets(q).view(-1, slots, heads, levels, points // num_z, num_z, 2)
        normalizer = pixel_normalizer(spatial_shapes, q).view(1, 1, 1, levels, 1, 1, 2)
        locations = ref[:, :, None, None, None] + offsets / normalizer  # anchor z of point (k, z)
        locations = locations.flatten(4, 5)
        weights = self.attention_weights(q).view(-1, slots, heads, levels * points).softmax(-1)
        weights = weights.view(-1, slots, heads, levels, points)
        projected = self.value_proj(value).view(value.shape[0], value.shape[1], heads, dims // heads)
        sampled = multi_scale_deformable_attention(projected, spatial_shapes, locations, weights)
        sampled = sampled.reshape(batch, cams * slots, dims) * valid.view(batch, cams * slots, 1)

        summed = query.new_zeros(batch, cells, dims)
        summed.scatter_add_(1, index.reshape(batch, cams * slots, 1).expand(-1, -1, dims), sampled)
        per_cell = hit_cells.sum(1).clamp(min=1).to(summed.dtype)  # (B, HW) cameras per cell
        return self.output_proj(summed / per_cell[..., None])
