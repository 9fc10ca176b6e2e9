"""Where the previous frame's BEV cells are now: warping it by the ego motion between the frames.

Temporal self-attention compares a BEV cell with the same place in the world one frame earlier. We
resample the previous BEV at the current cell centres mapped into the previous LiDAR frame (rotation
and translation, bilinear), so static objects line up before attention looks for the moving ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

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
