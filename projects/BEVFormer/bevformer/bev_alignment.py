"""Where the previous frame's BEV cells are now: bringing it onto the current frame's grid.

Temporal self-attention compares a BEV cell with the same place in the world one frame earlier. Two ways:

* fd3d's `align_previous_bev` resamples the previous BEV at the current cell centres mapped into the
  previous LiDAR frame (rotation and translation, bilinear), so static objects line up before attention
  looks for the moving ones.
* The official BEVFormer rotates the previous map (nearest) by the yaw change from the CAN bus about a
  fixed pixel (`rotate_bev_nearest`, torchvision's `rotate` to the bit) and leaves the translation to the
  attention: the previous queue's sampling points move by `can_bus_shift`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from fd3d.data.can_bus import YAW_RAD

BEVExtent = tuple[float, float, float, float]  # (x0, y0, x1, y1) metres in the LiDAR frame


def bev_cell_centers(bev_h: int, bev_w: int, extent: BEVExtent) -> Tensor:
    """(H, W, 2) metric (x, y) of every cell centre; row i runs along y, column j along x."""
    x0, y0, x1, y1 = extent
    xs = x0 + (torch.arange(bev_w, dtype=torch.float32) + 0.5) * (x1 - x0) / bev_w
    ys = y0 + (torch.arange(bev_h, dtype=torch.float32) + 0.5) * (y1 - y0) / bev_h
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], -1)


def align_previous_bev(prev_bev: Tensor, curr2prev: Tensor, extent: BEVExtent) -> Tensor:
    """prev_bev (B, C, H, W) in the previous LiDAR frame -> the same map on the current frame's grid.

    `curr2prev` (B, 4, 4) maps current LiDAR points to the previous LiDAR frame. Cells that come
    from outside the previous map read zeros.
    """
    batch, _, height, width = prev_bev.shape
    x0, y0, x1, y1 = extent
    centers = bev_cell_centers(height, width, extent).to(prev_bev)  # (H, W, 2) current frame
    points = torch.cat([centers, torch.zeros_like(centers[..., :1]), torch.ones_like(centers[..., :1])], -1)
    in_prev = torch.einsum("bij,hwj->bhwi", curr2prev.to(prev_bev), points)[..., :2]  # (B, H, W, 2)
    lo = in_prev.new_tensor([x0, y0])
    size = in_prev.new_tensor([x1 - x0, y1 - y0])
    grid = (in_prev - lo) / size * 2.0 - 1.0
    return F.grid_sample(prev_bev, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate_bev_nearest(bev: Tensor, angle_deg: Tensor, center: Sequence[float]) -> Tensor:
    """bev (B, C, H, W) turned by `angle_deg` (B,) degrees about pixel `center` (x = column, y = row).

    Exactly `torchvision.transforms.functional.rotate(bev[b], angle_deg[b], center=center)` with its
    defaults (nearest, same size, zeros outside): output pixel p reads the input at R(a) (p - c) + c in
    centred pixel coordinates, with R(a) = [[cos a, -sin a], [sin a, cos a]] (a positive angle turns the
    picture counter-clockwise as displayed, rows pointing down). The operations and their float32 / float64
    order are torchvision's, so nearest-pixel choices agree to the bit.
    """
    batch, _, height, width = bev.shape
    center_x, center_y = float(center[0]) - width * 0.5, float(center[1]) - height * 0.5
    # the inverse affine matrix torchvision builds for `rotate` (it rotates by -angle), in float64
    radians = angle_deg.to(torch.float64).neg() * (math.pi / 180.0)
    cos, sin = radians.cos(), radians.sin()
    translate_x = (cos * -center_x + sin * -center_y) + center_x
    translate_y = (-sin * -center_x + cos * -center_y) + center_y
    theta = torch.stack([cos, sin, translate_x, -sin, cos, translate_y], -1).view(batch, 2, 3)
    theta = theta.to(device=bev.device, dtype=bev.dtype)
    xs = torch.arange(width, dtype=bev.dtype, device=bev.device) + (0.5 - width * 0.5)
    ys = torch.arange(height, dtype=bev.dtype, device=bev.device) + (0.5 - height * 0.5)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], -1).view(1, height * width, 3)
    half_size = torch.tensor([0.5 * width, 0.5 * height], dtype=bev.dtype, device=bev.device)
    grid = base.expand(batch, -1, -1).bmm(theta.transpose(1, 2) / half_size)  # (B, H*W, 2) in [-1, 1]
    return F.grid_sample(
        bev, grid.view(batch, height, width, 2), mode="nearest", padding_mode="zeros", align_corners=False
    )


def can_bus_shift(can_bus: Tensor, extent: BEVExtent, bev_h: int, bev_w: int) -> Tensor:
    """(B, 2) (x, y) ego displacement since the previous frame in units of the whole BEV extent.

    `can_bus` (B, 18) is the relative vector (`fd3d.data.can_bus.relative_can_bus`): the global
    translation [0:2] is turned into the current LiDAR frame with the absolute yaw [16]. The official code
    rotates by the angle between the yaw and atan2(dy, dx) over the length of (dx, dy); the same rotation
    is written here with cos and sin of the yaw alone (cos(yaw - t) * length = dx cos yaw + dy sin yaw),
    which has no atan2 (onnxruntime has no float64 Atan) and no special case at zero motion. Float64, as
    the official numpy: equal to its order of operations to ~1e-16.
    """
    can_bus = can_bus.to(torch.float64)
    delta_x, delta_y = can_bus[:, 0], can_bus[:, 1]
    ego_angle = can_bus[:, YAW_RAD] / math.pi * 180 / 180 * math.pi  # the official degree round trip
    cos, sin = torch.cos(ego_angle), torch.sin(ego_angle)
    x0, y0, x1, y1 = extent
    cell_h, cell_w = (y1 - y0) / bev_h, (x1 - x0) / bev_w
    shift_y = (delta_x * cos + delta_y * sin) / cell_h / bev_h
    shift_x = (delta_x * sin - delta_y * cos) / cell_w / bev_w
    return torch.stack([shift_x, shift_y], -1)
