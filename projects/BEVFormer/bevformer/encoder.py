"""BEVFormer's encoder: learned BEV queries refined by temporal self-attention and spatial cross-attention."""

from __future__ import annotations

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.data.can_bus import CAN_BUS_SIZE, YAW_DEG
from fd3d.modeling.detr_head import feed_forward
from fd3d.modeling.outputs import CameraGeometry

from .bev_alignment import BEVExtent, align_previous_bev, bev_cell_centers, can_bus_shift, rotate_bev_nearest
from .config import ALIGNMENTS, PILLAR_HEIGHTS, TSA_VALUES
from .spatial_cross_attention import SpatialCrossAttention, project_pillars
from .temporal_self_attention import TemporalSelfAttention


def _choice(value: str, choices: tuple[str, ...], key: str) -> str:
    if value not in choices:
        raise ValueError(f"MODEL.BEVFORMER.{key} must be one of {choices}, got {value!r}")
    return value


def pillar_heights(num_z: int, z_range: tuple[float, float], mode: str) -> Tensor:
    """(Z,) metric heights of the reference points up every BEV pillar (MODEL.BEVFORMER.PILLAR_HEIGHTS)."""
    z0, z1 = z_range
    span = z1 - z0
    if _choice(mode, PILLAR_HEIGHTS, "PILLAR_HEIGHTS") == "centered":
        return z0 + (torch.arange(num_z, dtype=torch.float32) + 0.5) / num_z * span
    # official: normalised linspace(0.5, Z - 0.5, D) / Z, then scaled back to the range
    return torch.linspace(0.5, span - 0.5, num_z) / span * span + z0


def can_bus_mlp(embed_dims: int, norm: bool) -> nn.Sequential:
    """CAN-bus vector (B, 18) -> (B, C): Linear, ReLU, Linear, ReLU[, LayerNorm] (names as officially)."""
    mlp = nn.Sequential(
        nn.Linear(CAN_BUS_SIZE, embed_dims // 2),
        nn.ReLU(inplace=True),
        nn.Linear(embed_dims // 2, embed_dims),
        nn.ReLU(inplace=True),
    )
    if norm:
        mlp.add_module("norm", nn.LayerNorm(embed_dims))
    return mlp


class BEVEncoderLayer(nn.Module):
    """TSA -> norm -> SCA -> norm -> FFN -> norm, each with a residual (post-norm, as BEVFormer)."""

    def __init__(self, cfg: CfgNode, num_levels: int) -> None:
        super().__init__()
        head, bev = cfg.MODEL.HEAD, cfg.MODEL.BEVFORMER
        dims = head.EMBED_DIMS
        self.tsa = TemporalSelfAttention(dims, head.NUM_HEADS, bev.TSA_POINTS)
        self.sca = SpatialCrossAttention(dims, head.NUM_HEADS, num_levels, bev.SCA_POINTS, bev.NUM_Z_ANCHORS)
        self.sca_query_pos = bool(bev.SCA_QUERY_POS)
        self.ffn = feed_forward(dims, head.FFN_DIMS, head.DROPOUT)
        self.norms = nn.ModuleList(nn.LayerNorm(dims) for _ in range(3))
        self.dropout = nn.Dropout(head.DROPOUT)

    def forward(
        self, query: Tensor, query_pos: Tensor, temporal_values: Tensor, geometry_inputs: dict
    ) -> Tensor:
        """query, query_pos (B, HW, C); temporal_values (B, 2, HW, C) for TSA (`TemporalSelfAttention`)."""
        g = geometry_inputs
        tsa = self.tsa(query, query_pos, temporal_values, g["reference_2d"], g["bev_shape"])
        query = self.norms[0](query + self.dropout(tsa))
        sca_pos = query_pos if self.sca_query_pos else None
        sca = self.sca(query, sca_pos, g["value"], g["spatial_shapes"], g["uv"], g["hit"])
        query = self.norms[1](query + self.dropout(sca))
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
        self.alignment = _choice(bev.ALIGNMENT, ALIGNMENTS, "ALIGNMENT")
        self.rotate_prev_bev, self.use_shift = bool(bev.ROTATE_PREV_BEV), bool(bev.USE_SHIFT)
        if len(bev.ROTATE_CENTER) != 2:
            raise ValueError(f"MODEL.BEVFORMER.ROTATE_CENTER must be (x, y), got {bev.ROTATE_CENTER}")
        self.rotate_center = tuple(float(v) for v in bev.ROTATE_CENTER)
        self.tsa_value = _choice(bev.TSA_VALUE, TSA_VALUES, "TSA_VALUE")
        self.bev_queries = nn.Embedding(self.bev_h * self.bev_w, dims)
        self.row_embed = nn.Embedding(self.bev_h, dims // 2)
        self.col_embed = nn.Embedding(self.bev_w, dims // 2)
        self.level_embeds = nn.Parameter(torch.randn(num_levels, dims) * 0.02)
        self.cams_embeds = nn.Parameter(torch.randn(bev.NUM_CAMS, dims) * 0.02)
        self.can_bus_mlp = can_bus_mlp(dims, bev.CAN_BUS_NORM) if bev.USE_CAN_BUS else None
        self.layers = nn.ModuleList(BEVEncoderLayer(cfg, num_levels) for _ in range(bev.ENCODER_LAYERS))

        centers = bev_cell_centers(self.bev_h, self.bev_w, self.extent).flatten(0, 1)  # (HW, 2) metric
        span = torch.tensor([self.extent[2] - self.extent[0], self.extent[3] - self.extent[1]])
        self.register_buffer("reference_2d", (centers - torch.tensor(self.extent[:2])) / span, False)
        num_z = bev.NUM_Z_ANCHORS
        heights = pillar_heights(num_z, (pc[2], pc[5]), bev.PILLAR_HEIGHTS)
        pillars = torch.cat(
            [centers[:, None].expand(-1, num_z, 2), heights.view(1, num_z, 1).expand(len(centers), -1, 1)], -1
        )
        self.register_buffer("pillars", pillars, False)  # (HW, Z, 3) metric LiDAR frame
        self.bev_shape = [(self.bev_h, self.bev_w)]  # one level, Python ints (traceable by torch.export)

    @property
    def needs_can_bus(self) -> bool:
        """Whether `forward` reads the CAN-bus vector (the MLP, or the official alignment with history)."""
        return self.can_bus_mlp is not None or self.alignment == "rotate_shift"

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

    def _aligned_history(
        self, prev_bev: Tensor, curr2prev: Tensor | None, can_bus: Tensor | None, has_prev: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The previous BEV (B, HW, C) on the current grid, and TSA's sampling points: (HW, 2) for both
        queues, or (B, 2, HW, 2) when the previous queue's points are shifted (ALIGNMENT rotate_shift)."""
        batch = prev_bev.shape[0]
        as_map = prev_bev.transpose(1, 2).reshape(batch, -1, self.bev_h, self.bev_w)  # (B, C, H, W)
        reference = self.reference_2d
        if self.alignment == "warp":
            if curr2prev is None:
                raise KeyError(
                    "ALIGNMENT 'warp' with a previous BEV needs batch['curr2prev_lidar'] (B, 4, 4)"
                )
            as_map = align_previous_bev(as_map, curr2prev, self.extent)
        else:
            if self.rotate_prev_bev:
                as_map = rotate_bev_nearest(as_map, can_bus[:, YAW_DEG], self.rotate_center)
            if self.use_shift:
                shift = can_bus_shift(can_bus, self.extent, self.bev_h, self.bev_w).to(reference)
                shift = shift * has_prev.view(batch, 1).to(shift)  # (B, 2) (x, y)
                current = reference.expand(batch, -1, -1)
                reference = torch.stack([current + shift[:, None], current], 1)
        return as_map.flatten(2).transpose(1, 2), reference

    def _temporal_values(
        self, query: Tensor, input_query: Tensor, history: Tensor | None, has_prev: Tensor
    ) -> Tensor:
        """TSA's (B, 2, HW, C) [previous, current] maps for one layer (MODEL.BEVFORMER.TSA_VALUE)."""
        with_history = has_prev.view(-1, 1, 1)
        if self.tsa_value == "layer_query":
            previous = input_query if history is None else torch.where(with_history, history, input_query)
            return torch.stack([previous, query], 1)
        if history is None:
            return torch.stack([query, query], 1)
        previous = torch.where(with_history, history, query)
        current = torch.where(with_history, input_query, query)
        return torch.stack([previous, current], 1)

    def forward(
        self,
        pv: list[Tensor],
        geometry: CameraGeometry,
        prev_bev: Tensor | None = None,
        curr2prev: Tensor | None = None,
        prev_exists: Tensor | None = None,
        can_bus: Tensor | None = None,
    ) -> Tensor:
        """pv levels (B, Ncam, C, h, w); prev_bev (B, H*W, C) in the previous frame or None, used where
        prev_exists (B,); can_bus (B, 18) relative to the previous frame (`relative_can_bus`) when
        `needs_can_bus`. Returns (B, H*W, C)."""
        batch = pv[0].shape[0]
        if self.needs_can_bus and can_bus is None:
            raise KeyError(
                "this BEVFormer (USE_CAN_BUS or ALIGNMENT 'rotate_shift') needs batch['can_bus'] (B, 18)"
            )
        query = self.bev_queries.weight[None].expand(batch, -1, -1)
        if self.can_bus_mlp is not None:
            query = query + self.can_bus_mlp(can_bus.to(query.dtype))[:, None]
        query_pos = self.positional_embedding()[None].expand(batch, -1, -1)
        inputs = self._camera_inputs(pv, geometry)
        inputs.update(reference_2d=self.reference_2d, bev_shape=self.bev_shape)
        history, has_prev = None, torch.zeros(batch, dtype=torch.bool, device=query.device)
        if prev_bev is not None:
            if prev_exists is None:
                raise KeyError("a previous BEV needs batch['prev_exists'] (B,): False where a scene starts")
            has_prev = prev_exists.view(batch).to(device=query.device, dtype=torch.bool)
            history, inputs["reference_2d"] = self._aligned_history(prev_bev, curr2prev, can_bus, has_prev)
        input_query = query
        for layer in self.layers:
            query = layer(
                query, query_pos, self._temporal_values(query, input_query, history, has_prev), inputs
            )
        return query
