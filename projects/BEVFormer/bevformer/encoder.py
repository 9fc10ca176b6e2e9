"""BEVFormer's encoder: learned BEV queries refined by temporal self-attention and spatial cross-attention."""

from __future__ import annotations

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.modeling.detr_head import feed_forward
from fd3d.modeling.outputs import CameraGeometry

from .bev_alignment import BEVExtent, align_previous_bev, bev_cell_centers
from .spatial_cross_attention import SpatialCrossAttention, project_pillars
from .temporal_self_attention import TemporalSelfAttention


class BEVEncoderLayer(nn.Module):
    """TSA -> norm -> SCA -> norm -> FFN -> norm, each with a residual (post-norm, as BEVFormer)."""

    def __init__(self, cfg: CfgNode, num_levels: int) -> None:
        super().__init__()
        head, bev = cfg.MODEL.HEAD, cfg.MODEL.BEVFORMER
        dims = head.EMBED_DIMS
        self.tsa = TemporalSelfAttention(dims, head.NUM_HEADS, bev.TSA_POINTS)
        self.sca = SpatialCrossAttention(dims, head.NUM_HEADS, num_levels, bev.SCA_POINTS, bev.NUM_Z_ANCHORS)
        self.ffn = feed_forward(dims, head.FFN_DIMS, head.DROPOUT)
        self.norms = nn.ModuleList(nn.LayerNorm(dims) for _ in range(3))
        self.dropout = nn.Dropout(head.DROPOUT)

    def forward(self, query: Tensor, query_pos: Tensor, prev_bev: Tensor, geometry_inputs: dict) -> Tensor:
        g = geometry_inputs
        query = self.norms[0](
            query + self.dropout(self.tsa(query, query_pos, prev_bev, g["reference_2d"], g["bev_shape"]))
        )
        query = self.norms[1](
            query
            + self.dropout(self.sca(query, query_pos, g["value"], g["spatial_shapes"], g["uv"], g["hit"]))
        )
        return self.norms[2](query + self.ffn(query))


class BEVEncoder(nn.Module):
    """Camera features (+ previous BEV) -> BEV features (B, H*W, C), rows along y."""

    def __init__(self, cfg: CfgNode, num_levels: int) -> None:
        super().__init__()
        bev, dims = cfg.MODEL.BEVFORMER, cfg.MODEL.HEAD.EMBED_DIMS
        pc = cfg.MODEL.POINT_CLOUD_RANGE
        if dims % 2:
            raise ValueError(f"MODEL.HEAD.EMBED_DIMS must be even for the row/column embedding, got {dims}")
        self.bev_h, self.bev_w = bev.BEV_H, bev.BEV_W
        self.extent: BEVExtent = (pc[0], pc[1], pc[3], pc[4])
        self.num_cams = bev.NUM_CAMS
        self.bev_queries = nn.Embedding(self.bev_h * self.bev_w, dims)
        self.row_embed = nn.Embedding(self.bev_h, dims // 2)
        self.col_embed = nn.Embedding(self.bev_w, dims // 2)
        self.level_embeds = nn.Parameter(torch.randn(num_levels, dims) * 0.02)
        self.cams_embeds = nn.Parameter(torch.randn(bev.NUM_CAMS, dims) * 0.02)
        self.layers = nn.ModuleList(BEVEncoderLayer(cfg, num_levels) for _ in range(bev.ENCODER_LAYERS))

        centers = bev_cell_centers(self.bev_h, self.bev_w, self.extent).flatten(0, 1)  # (HW, 2) metric
        span = torch.tensor([self.extent[2] - self.extent[0], self.extent[3] - self.extent[1]])
        self.register_buffer("reference_2d", (centers - torch.tensor(self.extent[:2])) / span, False)
        num_z = bev.NUM_Z_ANCHORS
        heights = pc[2] + (torch.arange(num_z, dtype=torch.float32) + 0.5) / num_z * (pc[5] - pc[2])
        pillars = torch.cat(
            [centers[:, None].expand(-1, num_z, 2), heights.view(1, num_z, 1).expand(len(centers), -1, 1)], -1
        )
        self.register_buffer("pillars", pillars, False)  # (HW, Z, 3) metric LiDAR frame
        self.bev_shape = [(self.bev_h, self.bev_w)]  # one level, Python ints (traceable by torch.export)

    def positional_embedding(self) -> Tensor:
        """(H*W, C): column embedding then row embedding of each cell."""
        cols = self.col_embed.weight[None].expand(self.bev_h, -1, -1)
        rows = self.row_embed.weight[:, None].expand(-1, self.bev_w, -1)
        return torch.cat([cols, rows], -1).flatten(0, 1)

    def _camera_inputs(self, pv: list[Tensor], geometry: CameraGeometry) -> dict:
        batch, cams = pv[0].shape[:2]
        if cams > self.num_cams:
            raise ValueError(f"got {cams} cameras, MODEL.BEVFORMER.NUM_CAMS is {self.num_cams}")
        flat = [
            (level.flatten(3).permute(0, 1, 3, 2) + self.cams_embeds[:cams, None] + self.level_embeds[i])
            for i, level in enumerate(pv)
        ]  # per level (B, Ncam, h*w, C)
        value = torch.cat(flat, 2).flatten(0, 1)  # (B*Ncam, S, C)
        shapes = [tuple(level.shape[-2:]) for level in pv]
        uv, hit = project_pillars(self.pillars, geometry.lidar2img, geometry.image_size)
        return {"value": value, "spatial_shapes": shapes, "uv": uv.to(value.dtype), "hit": hit}

    def forward(
        self,
        pv: list[Tensor],
        geometry: CameraGeometry,
        prev_bev: Tensor | None = None,
        curr2prev: Tensor | None = None,
        prev_exists: Tensor | None = None,
    ) -> Tensor:
        """pv levels (B, Ncam, C, h, w); prev_bev (B, H*W, C) in the previous frame or None -> (B, H*W, C)."""
        batch = pv[0].shape[0]
        query = self.bev_queries.weight[None].expand(batch, -1, -1)
        query_pos = self.positional_embedding()[None].expand(batch, -1, -1)
        if prev_bev is None:
            prev = query
        else:
            as_map = prev_bev.transpose(1, 2).reshape(batch, -1, self.bev_h, self.bev_w)
            aligned = align_previous_bev(as_map, curr2prev, self.extent).flatten(2).transpose(1, 2)
            # a scene's first frame has no history: attend to the current queries instead
            prev = torch.where(prev_exists.view(batch, 1, 1).bool(), aligned, query)
        inputs = self._camera_inputs(pv, geometry)
        inputs.update(reference_2d=self.reference_2d, bev_shape=self.bev_shape)
        for layer in self.layers:
            query = layer(query, query_pos, prev, inputs)
        return query
