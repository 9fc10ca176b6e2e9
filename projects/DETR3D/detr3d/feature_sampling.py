"""DETR3D's 2D-to-3D link: each query's 3D reference point is projected into every camera and the FPN
levels are read there bilinearly; learned weights (sigmoid, zeroed where the point is not visible)
combine cameras and levels into one feature per query."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fd3d.modeling.box_coder import denormalize_centers
from fd3d.modeling.detr_head import CrossAttention, inverse_sigmoid
from fd3d.modeling.projection import project_to_images


def project_reference_points(
    points01: Tensor, pc_range: Tensor, lidar2img: Tensor, image_size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """(B, Q, 3) points in [0, 1] of the range -> uv in [0, 1] (B, Ncam, Q, 2), visible mask (B, Ncam, Q)."""
    return project_to_images(denormalize_centers(points01, pc_range), lidar2img, image_size)


def sample_levels(pv: list[Tensor], uv: Tensor) -> Tensor:
    """pv levels (B, Ncam, C, h, w), uv (B, Ncam, Q, 2) -> (B, Ncam, L, Q, C) bilinear samples."""
    batch, cams = uv.shape[:2]
    grid = (2.0 * uv - 1.0).flatten(0, 1)[:, :, None]  # (B*Ncam, Q, 1, 2)
    samples = [
        F.grid_sample(level.flatten(0, 1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        for level in pv
    ]  # (B*Ncam, C, Q, 1) each
    stacked = torch.stack([s[..., 0] for s in samples], 1)  # (B*Ncam, L, C, Q)
    # NaN / inf samples read 0, as the official DETR3D makes them (nan_to_num after sampling)
    return torch.nan_to_num(stacked.transpose(2, 3).unflatten(0, (batch, cams)))


class ProjectedPointCrossAttention(CrossAttention):
    def __init__(self, embed_dims: int, num_cams: int, num_levels: int, dropout: float) -> None:
        super().__init__()
        self.num_cams, self.num_levels = num_cams, num_levels
        self.attention_weights = nn.Linear(embed_dims, num_cams * num_levels)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.position_encoder = nn.Sequential(
            nn.Linear(3, embed_dims),
            nn.LayerNorm(embed_dims),
            nn.ReLU(inplace=True),
            nn.Linear(embed_dims, embed_dims),
            nn.LayerNorm(embed_dims),
            nn.ReLU(inplace=True),
        )
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, context: dict) -> Tensor:
        uv, visible = project_reference_points(
            reference_points, context["pc_range"], context["lidar2img"], context["image_size"]
        )
        batch, cams, queries = visible.shape
        if cams > self.num_cams:
            raise ValueError(f"got {cams} cameras, MODEL.DETR3D.NUM_CAMS is {self.num_cams}")
        samples = sample_levels(context["pv"], uv)  # (B, Ncam, L, Q, C)
        weights = self.attention_weights(query + query_pos).sigmoid()
        weights = weights.view(batch, queries, self.num_cams, self.num_levels)[:, :, :cams]
        weights = weights.permute(0, 2, 3, 1) * visible[:, :, None].to(weights)  # (B, Ncam, L, Q)
        fused = (samples * weights[..., None]).sum((1, 2))  # (B, Q, C)
        position = self.position_encoder(inverse_sigmoid(reference_points))
        return self.dropout(self.output_proj(fused)) + position
