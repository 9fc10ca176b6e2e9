"""The distillation head (Eq. 1-2): queries that find the focal regions in the expert's features.

N queries go through `num_layers` decoder layers (self-attention, deformable attention on the expert
feature, FFN), each predicting class scores and 3D boxes with iterative box refinement; every layer is
trained by Hungarian matching against the ground truth (L_dh, weights alpha and beta). Its inputs are
detached expert features, so L_dh moves only the head.

QFD (Eq. 10-13) distils at the sampling locations p_q + Delta p_mqk of the *last* layer. For them to be
the paper's "projection center of the estimated bounding box", the last layer's reference point is the
centre of the box the previous layer predicted from the expert feature, and its offsets come from a query
that has already read the expert feature: both depend on the input. With `box_reference` (Deformable
DETR's box mode) the offsets of a layer are expressed in units of the previous layer's box, rotated with
its yaw: offset / K * half-size, so the initial ring of samples lies inside the estimated object instead
of a fixed number of BEV cells around it. The first layer has no box yet: static learned reference points
and offsets in feature pixels. One layer without box reference is the single static layer of fd3d 0.1.

- BEV mode (BEVFormer): deformable attention on the expert BEV around each query's (x, y).
- PV mode (BEV-free detectors such as DETR3D, Section 4.2): each query's 3D reference point is projected
  into every camera; deformable attention samples one expert PV level around it (offsets in feature
  pixels) in the cameras that see it, and the cameras are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fd3d.distill.pairing import Stage
from fd3d.modeling.box_coder import denormalize_centers
from fd3d.modeling.detr_head import (
    box_branch,
    class_branch,
    feed_forward,
    initial_reference_points,
    refine_boxes,
)
from fd3d.modeling.outputs import DetectorFeatures, HeadOutputs
from fd3d.modeling.projection import project_to_images
from fd3d.ops.deform_attn import MultiScaleDeformableAttention


@dataclass
class DistillHeadOutputs(HeadOutputs):
    """A detector head's outputs (every layer's logits and codes, stacked: `DetectionLoss` trains both
    alike) and where the last layer sampled, which QFD reads."""

    # BEV mode: (B, Q, M, K, 2) in [0, 1] of the BEV (x along W).
    # PV mode: (B, Ncam, Q, M, K, 2) in [0, 1] of each camera's feature level.
    locations: Tensor
    visible: Tensor | None = None  # PV mode: (B, Ncam, Q), where the query's reference point is seen


def box_offset_transform(box_code: Tensor, extent: Tensor, num_points: int) -> Tensor:
    """(B, Q, 2, 2) map from a raw offset to a [0, 1]-of-the-BEV displacement, in units of the box.

    box_code (B, Q, 10) metric codes (cx, cy, log w, log l, cz, log h, sin, cos, ...); extent (2,) the
    BEV's metric size (X, Y). An offset (a, b) lands at centre + R(yaw) (a l/2, b w/2) / num_points metres
    (Deformable DETR's `offset / n_points * wh * 0.5`, rotated with the box): a along the heading.
    """
    width, length = box_code[..., 2].exp(), box_code[..., 3].exp()
    norm = torch.sqrt(box_code[..., 6] ** 2 + box_code[..., 7] ** 2).clamp(min=1e-6)
    sin, cos = box_code[..., 6] / norm, box_code[..., 7] / norm
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    half = torch.diag_embed(torch.stack([length, width], -1) * (0.5 / num_points))
    to_unit = torch.diag(1.0 / extent.to(box_code))
    return to_unit @ rotation @ half


class DistillHeadLayer(nn.Module):
    """Self-attention, one-level deformable attention on the expert feature, FFN (post-norm)."""

    def __init__(self, embed_dims: int, num_heads: int, num_points: int, ffn_dims: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, batch_first=True)
        self.cross_attn = MultiScaleDeformableAttention(
            embed_dims, num_heads, num_levels=1, num_points=num_points
        )
        self.ffn = feed_forward(embed_dims, ffn_dims, dropout=0.0)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))

    def self_attend(self, query: Tensor, query_pos: Tensor) -> Tensor:
        q = query + query_pos
        return self.norms[0](query + self.self_attn(q, q, query, need_weights=False)[0])

    def finish(self, query: Tensor, attended: Tensor) -> Tensor:
        query = self.norms[1](query + attended)
        return self.norms[2](query + self.ffn(query))


class DistillationHead(nn.Module):
    def __init__(
        self,
        mode: str | Stage,
        embed_dims: int,
        num_classes: int,
        num_queries: int,
        num_heads: int,
        num_points: int,
        ffn_dims: int,
        pc_range: list[float],
        pv_level: int = 0,
        ground_height: float = -1.8,
        num_layers: int = 1,
        box_reference: bool = False,
    ) -> None:
        super().__init__()
        if mode not in list(Stage):
            raise ValueError(
                f"distillation head mode must be one of {[s.value for s in Stage]}, got {mode!r}"
            )
        if num_layers < 1:
            raise ValueError(f"the distillation head needs at least one layer, got num_layers={num_layers}")
        if box_reference and Stage(mode) is not Stage.BEV:
            raise ValueError("box-reference sampling is defined on the BEV; the PV head samples in pixels")
        self.mode, self.pv_level = Stage(mode), pv_level
        self.num_points, self.box_reference = num_points, box_reference
        self.register_buffer("pc_range", torch.tensor(pc_range, dtype=torch.float32), False)
        self.query_content = nn.Embedding(num_queries, embed_dims)
        self.query_pos = nn.Embedding(num_queries, embed_dims)
        ground_z01 = (ground_height - pc_range[2]) / (pc_range[5] - pc_range[2])
        self.reference_logits = nn.Parameter(initial_reference_points(num_queries, ground_z01))
        self.layers = nn.ModuleList(
            DistillHeadLayer(embed_dims, num_heads, num_points, ffn_dims) for _ in range(num_layers)
        )
        self.cls_branches = nn.ModuleList(class_branch(embed_dims, num_classes) for _ in range(num_layers))
        self.box_branches = nn.ModuleList(box_branch(embed_dims) for _ in range(num_layers))

    def _check_extent(self, extent: tuple[float, float, float, float]) -> None:
        pc = self.pc_range.tolist()
        if [round(v, 4) for v in extent] != [round(v, 4) for v in (pc[0], pc[1], pc[3], pc[4])]:
            raise ValueError(f"expert BEV extent {extent} differs from the point-cloud range {pc}")

    def _attend_bev(
        self,
        layer: DistillHeadLayer,
        query: Tensor,
        reference: Tensor,
        previous_box: Tensor | None,
        features: DetectorFeatures,
    ) -> tuple[Tensor, Tensor]:
        bev = features.bev.detach()  # (B, C, H, W)
        self._check_extent(features.bev_extent)
        value = bev.flatten(2).transpose(1, 2)
        shape = [tuple(bev.shape[-2:])]
        transform = None
        if self.box_reference and previous_box is not None:
            transform = box_offset_transform(
                previous_box, self.pc_range[3:5] - self.pc_range[:2], self.num_points
            )
        output, locations = layer.cross_attn(query, reference[:, :, None, :2], value, shape, transform)
        return output, locations[:, :, :, 0]  # one level: (B, Q, M, K, 2)

    def _attend_pv(
        self, layer: DistillHeadLayer, query: Tensor, reference: Tensor, features: DetectorFeatures
    ) -> tuple[Tensor, Tensor, Tensor]:
        level = features.pv[self.pv_level].detach()  # (B, Ncam, C, h, w)
        batch, cams = level.shape[:2]
        metric = denormalize_centers(reference, self.pc_range)
        uv, visible = project_to_images(metric, features.geometry.lidar2img, features.geometry.image_size)
        value = level.flatten(3).transpose(2, 3).flatten(0, 1)  # (B*Ncam, h*w, C)
        shape = [tuple(level.shape[-2:])]
        per_camera_query = query[:, None].expand(-1, cams, -1, -1).flatten(0, 1)
        output, locations = layer.cross_attn(per_camera_query, uv.flatten(0, 1)[:, :, None], value, shape)
        output = output.unflatten(0, (batch, cams)) * visible[..., None]
        output = output.sum(1) / visible.sum(1).clamp(min=1)[..., None]
        return output, locations[:, :, :, 0].unflatten(0, (batch, cams)), visible

    def forward(self, features: DetectorFeatures) -> DistillHeadOutputs:
        batch = (features.bev if self.mode is Stage.BEV else features.pv[self.pv_level]).shape[0]
        query = self.query_content.weight.expand(batch, -1, -1)
        query_pos = self.query_pos.weight.expand(batch, -1, -1)
        reference = self.reference_logits.sigmoid().expand(batch, -1, -1)
        previous_box: Tensor | None = None
        all_logits, all_codes = [], []
        visible = None
        branches = zip(self.layers, self.cls_branches, self.box_branches, strict=True)
        for layer, cls_branch, box_branch_ in branches:
            query = layer.self_attend(query, query_pos)
            if self.mode is Stage.BEV:
                attended, locations = self._attend_bev(
                    layer, query + query_pos, reference, previous_box, features
                )
            else:
                attended, locations, visible = self._attend_pv(layer, query + query_pos, reference, features)
            query = layer.finish(query, attended)
            code, centers01 = refine_boxes(box_branch_(query), reference, self.pc_range)
            all_logits.append(cls_branch(query))
            all_codes.append(code)
            # the next layer looks around this layer's box: its centre and (box mode) its size and yaw
            reference, previous_box = centers01.detach(), code.detach()
        return DistillHeadOutputs(torch.stack(all_logits), torch.stack(all_codes), locations, visible)
