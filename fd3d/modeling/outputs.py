"""What a detector hands to the head, the distiller and the evaluator (see `fd3d.modeling.detector`)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class CameraGeometry:
    """Projection from the LiDAR frame to pixels of the network input (after any resize)."""

    lidar2img: Tensor  # (B, Ncam, 4, 4)
    image_size: tuple[int, int]  # (H, W)


@dataclass
class DetectorFeatures:
    pv: list[Tensor]  # per level (B, Ncam, C, H_l, W_l)
    pv_strides: list[int]
    geometry: CameraGeometry
    bev: Tensor | None = None  # (B, C, bev_h, bev_w), row index along y
    bev_extent: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) metres, LiDAR frame


@dataclass
class HeadOutputs:
    cls_logits: Tensor  # (L, B, Q, K) one entry per decoder layer, last = final
    box_code: Tensor  # (L, B, Q, 10) metric centres, log sizes, sin/cos yaw, velocity
