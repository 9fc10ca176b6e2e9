"""The distillation head (Eq. 1-2): queries that find the focal regions in the expert's features.

N queries go through self-attention, deformable attention on the expert feature and an FFN, then predict
class scores and 3D boxes, trained by Hungarian matching against the ground truth (L_dh, weights alpha
and beta). Its inputs are detached expert features, so L_dh moves only the head. Its deformable
attention's sampling locations are what QFD distils at (Eq. 10-13):

- BEV mode (BEVFormer): one deformable attention on the expert BEV around each query's (x, y).
- PV mode (BEV-free detectors such as DETR3D, Section 4.2): each query's 3D reference point is projected
  into every camera; deformable attention samples one expert PV level around it in the cameras that see
  it, and the cameras are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fd3d.modeling.box_coder import denormalize_centers
from fd3d.modeling.detr_head import (
    box_branch,
    class_branch,
    feed_forward,
    initial_reference_points,
    refine_boxes,
)
from fd3d.modeling.outputs import DetectorFeatures
from fd3d.modeling.projection import project_to_images
from fd3d.ops.deform_attn import MultiScaleDeformableAttention

HEAD_MODES = ("bev", "pv")


@dataclass
class DistillHeadOutputs:
    cls_logits: Tensor  # (B, Q, K)
    box_code: Tensor  # (B, Q, 10) metric centres
    # BEV mode: (B, Q, M, K, 2) in [0, 1] of the BEV (x along W). PV mode: (B, Ncam, Q, M, K, 2) in [0, 1]
    # of each camera's feature level.
    locations: Tensor
    visible: Tensor | None = None  # PV mode: (B, Ncam, Q), where the query's reference point is seen


class DistillationHead(nn.Module):
    def __init__(
        self,
        mode: str,
        embed_dims: int,
        num_classes: int,
        num_queries: int,
        num_heads: int,
        num_points: int,
        ffn_dims: int,
        pc_range: list[float],
        pv_level: int = 0,
        ground_height: float = -1.8,
    ) -> None:
        super().__init__()
        if mode not in HEAD_MODES:
            raise ValueError(f"distillation head mode must be one of {HEAD_MODES}, got {mode!r}")
        self.mode, self.pv_level = mode, pv_level
        self.register_buffer("pc_range", torch.tensor(pc_range, dtype=torch.float32), False)
        self.query_content = nn.Embedding(num_queries, embed_dims)
        self.query_pos = nn.Embedding(num_queries, embed_dims)
        ground_z01 = (ground_height - pc_range[2]) / (pc_range[5] - pc_range[2])
        self.reference_logits = nn.Parameter(initial_reference_points(num_queries, ground_z01))
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, batch_first=True)
        self.cross_attn = MultiScaleDeformableAttention(
            embed_dims, num_heads, num_levels=1, num_points=num_points
        )
        self.ffn = feed_forward(embed_dims, ffn_dims, dropout=0.0)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        self.cls_branch = class_branch(embed_dims, num_classes)
        self.box_branch = box_branch(embed_dims)

    def _check_extent(self, extent: tuple[float, float, float, float]) -> None:
        pc = self.pc_range.tolist()
        if [round(v, 4) for v in extent] != [round(v, 4) for v in (pc[0], pc[1], pc[3], pc[4])]:
            raise ValueError(f"expert BEV extent {extent} differs from the point-cloud range {pc}")

    def _attend_bev(
        self, query: Tensor, reference: Tensor, features: DetectorFeatures
    ) -> tuple[Tensor, Tensor]:
        bev = features.bev.detach()  # (B, C, H, W)
        self._check_extent(features.bev_extent)
        value = bev.flatten(2).transpose(1, 2)
        shape = torch.tensor([bev.shape[-2:]], device=bev.device)
        output, locations = self.cross_attn(query, reference[:, :, None, :2], value, shape)
        return output, locations[:, :, :, 0]  # one level: (B, Q, M, K, 2)

    def _attend_pv(
        self, query: Tensor, reference: Tensor, features: DetectorFeatures
    ) -> tuple[Tensor, Tensor, Tensor]:
        level = features.pv[self.pv_level].detach()  # (B, Ncam, C, h, w)
        batch, cams = level.shape[:2]
        metric = denormalize_centers(reference, self.pc_range)
        uv, visible = project_to_images(metric, features.geometry.lidar2img, features.geometry.image_size)
        value = level.flatten(3).transpose(2, 3).flatten(0, 1)  # (B*Ncam, h*w, C)
        shape = torch.tensor([level.shape[-2:]], device=level.device)
        per_camera_query = query[:, None].expand(-1, cams, -1, -1).flatten(0, 1)
        output, locations = self.cross_attn(per_camera_query, uv.flatten(0, 1)[:, :, None], value, shape)
        output = output.unflatten(0, (batch, cams)) * visible[..., None]
        output = output.sum(1) / visible.sum(1).clamp(min=1)[..., None]
        return output, locations[:, :, :, 0].unflatten(0, (batch, cams)), visible

    def forward(self, features: DetectorFeatures) -> DistillHeadOutputs:
        batch = (features.bev if self.mode == "bev" else features.pv[self.pv_level]).shape[0]
        query = self.query_content.weight.expand(batch, -1, -1)
        query_pos = self.query_pos.weight.expand(batch, -1, -1)
        reference = self.reference_logits.sigmoid().expand(batch, -1, -1)
        q = query + query_pos
        query = self.norms[0](query + self.self_attn(q, q, query, need_weights=False)[0])
        visible = None
        if self.mode == "bev":
            attended, locations = self._attend_bev(query + query_pos, reference, features)
        else:
            attended, locations, visible = self._attend_pv(query + query_pos, reference, features)
        query = self.norms[1](query + attended)
        query = self.norms[2](query + self.ffn(query))
        code, _ = refine_boxes(self.box_branch(query), reference, self.pc_range)
        return DistillHeadOutputs(self.cls_branch(query), code, locations, visible)
