"""LiDAR points -> normalised image coordinates of every camera, with a visibility mask."""

from __future__ import annotations

import torch
from torch import Tensor

DEPTH_EPS = 1e-5


def project_to_images(
    points_lidar: Tensor, lidar2img: Tensor, image_size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """points (B, N, 3) in the LiDAR frame, lidar2img (B, Ncam, 4, 4) -> uv (B, Ncam, N, 2) in [0, 1] of the
    image (x along the width) and visible (B, Ncam, N): in front of the camera and inside the image."""
    homogeneous = torch.cat([points_lidar, torch.ones_like(points_lidar[..., :1])], -1).to(lidar2img)
    projected = torch.einsum("bcij,bnj->bcni", lidar2img, homogeneous)
    depth = projected[..., 2:3]
    height, width = image_size
    uv = projected[..., :2] / depth.clamp(min=DEPTH_EPS) / projected.new_tensor([width, height])
    visible = (depth[..., 0] > DEPTH_EPS) & (uv > 0).all(-1) & (uv < 1).all(-1)
    return uv, visible
