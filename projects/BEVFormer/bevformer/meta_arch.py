"""BEVFormer: camera features -> BEV (with temporal history) -> detection-transformer decoder."""

from __future__ import annotations

import math

import torch
from fvcore.common.config import CfgNode
from torch import Tensor

from fd3d.data.can_bus import relative_can_bus
from fd3d.modeling.detector import Camera3DDetector
from fd3d.modeling.detr_head import CrossAttention, DetectionTransformerHead
from fd3d.modeling.evaluating import evaluating
from fd3d.modeling.outputs import CameraGeometry, DetectorFeatures, HeadOutputs
from fd3d.modeling.registry import META_ARCH_REGISTRY
from fd3d.ops.deform_attn import MultiScaleDeformableAttention

from .encoder import BEVEncoder
from .spatial_cross_attention import project_pillars


class BEVDeformableCrossAttention(CrossAttention):
    """Decoder queries sample the BEV around the (x, y) of their reference point."""

    def __init__(self, embed_dims: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        self.attention = MultiScaleDeformableAttention(
            embed_dims, num_heads, num_levels=1, num_points=num_points
        )

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, context: dict) -> Tensor:
        output, _ = self.attention(
            query + query_pos, reference_points[:, :, None, :2], context["bev"], context["bev_shape"]
        )
        return output


@META_ARCH_REGISTRY.register()
class BEVFormer(Camera3DDetector):
    def __init__(self, cfg: CfgNode) -> None:
        super().__init__(cfg)
        head, bev = cfg.MODEL.HEAD, cfg.MODEL.BEVFORMER
        if cfg.MODEL.FPN.OUT_CHANNELS != head.EMBED_DIMS:
            raise ValueError(
                f"MODEL.FPN.OUT_CHANNELS ({cfg.MODEL.FPN.OUT_CHANNELS}) must equal MODEL.HEAD.EMBED_DIMS "
                f"({head.EMBED_DIMS}): BEV queries attend to FPN features directly"
            )
        self.queue_length = bev.QUEUE_LENGTH
        self.encoder = BEVEncoder(cfg, num_levels=cfg.MODEL.FPN.NUM_OUTS)
        self.head = DetectionTransformerHead(
            cfg,
            self.num_classes,
            lambda: BEVDeformableCrossAttention(head.EMBED_DIMS, head.NUM_HEADS, bev.DECODER_POINTS),
        )

    @property
    def needs_can_bus(self) -> bool:
        """Whether a frame needs its CAN-bus vector (the official architectures)."""
        return self.encoder.needs_can_bus

    @property
    def warps_history(self) -> bool:
        """Whether the previous BEV is aligned by `curr2prev_lidar` (fd3d's ALIGNMENT "warp")."""
        return self.encoder.alignment == "warp"

    def _relative_can_bus(self, frame: dict, prev_can_bus: Tensor | None, has_history: bool) -> Tensor | None:
        """(B, 18) CAN-bus vector relative to the previous frame, or None when the encoder does not read it.

        `frame["can_bus"]` is absolute (`fd3d.data.can_bus.can_bus_from_pose`); position and yaw become the
        change since `prev_can_bus` where a previous BEV is used, else 0 (official `forward_test`). A frame
        may carry `relative_can_bus` instead, the change already formed (what a deployed graph is given by
        its host, `fd3d.data.can_bus.host_can_bus`).
        """
        if not self.encoder.needs_can_bus:
            return None
        if "relative_can_bus" in frame:
            return frame["relative_can_bus"]
        if "can_bus" not in frame:
            raise KeyError(
                "this BEVFormer (USE_CAN_BUS or ALIGNMENT 'rotate_shift') needs batch['can_bus'] (B, 18)"
            )
        can_bus = frame["can_bus"]
        has_prev = torch.zeros(can_bus.shape[0], dtype=torch.bool, device=can_bus.device)
        if has_history:
            if prev_can_bus is None:
                raise KeyError("a previous BEV with CAN-bus input needs batch['prev_can_bus'] (B, 18)")
            has_prev = frame["prev_exists"].view(-1).to(device=can_bus.device, dtype=torch.bool)
        return relative_can_bus(can_bus, prev_can_bus, has_prev)

    def _encode_frame(
        self, frame: dict, prev_bev: Tensor | None, prev_can_bus: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor], CameraGeometry]:
        pv, geometry = self.encode_images(frame)
        can_bus = self._relative_can_bus(frame, prev_can_bus, prev_bev is not None)
        bev = self.encoder(
            pv, geometry, prev_bev, frame.get("curr2prev_lidar"), frame.get("prev_exists"), can_bus
        )
        return bev, pv, geometry

    def extract_features(self, batch: dict) -> DetectorFeatures:
        """The current frame's features; the history comes from `batch["prev_bev"]` (streaming: the `bev`
        returned for the previous frame (B, C, H, W), with `prev_exists` and, for CAN-bus models,
        `prev_can_bus`, that frame's `can_bus`) or else by encoding `batch["queue"]` oldest first."""
        prev_bev, prev_can_bus = None, None
        queue = batch.get("queue") or []
        if "prev_bev" in batch:
            prev_bev = batch["prev_bev"].flatten(2).transpose(1, 2)
            prev_can_bus = batch.get("prev_can_bus")
        elif self.queue_length and queue:
            with evaluating(self):  # history frames are encoded as at test time: no gradient, no dropout
                for frame in queue[-self.queue_length :]:
                    prev_bev = self._encode_frame(frame, prev_bev, prev_can_bus)[0]
                    prev_can_bus = frame.get("can_bus")
        bev, pv, geometry = self._encode_frame(batch, prev_bev, prev_can_bus)
        enc = self.encoder
        bev_map = bev.transpose(1, 2).reshape(bev.shape[0], -1, enc.bev_h, enc.bev_w)
        return DetectorFeatures(pv, self.pv_strides, geometry, bev=bev_map, bev_extent=enc.extent)

    @torch.no_grad()
    def size_export_slots(self, batch: dict, margin: float) -> int:
        """Fix the cells per camera an exported graph's spatial cross-attention gathers: the most any
        camera of `batch`'s rig hits, times `margin` (other rigs may hit more), at most every cell."""
        _, geometry = self.encode_images({key: batch[key][:1] for key in ("images", "lidar2img")})
        _, hit = project_pillars(self.encoder.pillars, geometry.lidar2img, geometry.image_size)
        cells = hit.shape[2]
        busiest = int(hit.any(-1).sum(-1).max())
        slots = cells if busiest * margin >= cells else math.ceil(busiest * margin)
        for layer in self.encoder.layers:
            layer.sca.export_slots = slots
        return slots

    def hits_dropped(self) -> Tensor:
        """The hit cells the last frame's rig has beyond the export slots: 0 but in an exported graph."""
        return self.encoder.layers[0].sca.dropped.clone()

    def next_state(self, features: DetectorFeatures, batch: dict) -> dict | None:
        """The BEV as the next frame's `prev_bev` and, for CAN-bus models, this frame's absolute CAN bus as
        its `prev_can_bus` (the official forward_test's prev_frame_info)."""
        if not self.queue_length:
            return None
        state = {"prev_bev": features.bev}
        if "can_bus" in batch:
            state["prev_can_bus"] = batch["can_bus"]
        return state

    def forward_head(self, features: DetectorFeatures, batch: dict) -> HeadOutputs:
        bev = features.bev.flatten(2).transpose(1, 2)  # (B, H*W, C)
        context = {"bev": bev, "bev_shape": self.encoder.bev_shape}
        return self.head(context, bev.shape[0])
