"""Focal masks of SMGD (Sec. 3.2): where the focal boxes lie in BEV and PV, and the selective random mask.

Box layout throughout: boxes_lidar (N, >=7) as (x, y, z, w, l, h, yaw, ...) in the LiDAR frame, z the box
centre, length l along the heading yaw (counter-clockwise from +x), width w across it.

Coarse grids: every box marks at least the cell that holds its centre (BEV: the box centre; PV: the centre
of its clipped image rectangle). Without that rule a box narrower than a cell, e.g. a traffic cone on a
100x100 BEV over 102.4 m, contains no cell centre and would vanish from the mask.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MIN_DEPTH = 1e-5


def _check_boxes(boxes_lidar: Tensor) -> None:
    if boxes_lidar.dim() != 2 or boxes_lidar.shape[1] < 7:
        raise ValueError(
            f"boxes_lidar must be (N, >=7) as (x, y, z, w, l, h, yaw, ...), got {tuple(boxes_lidar.shape)}"
        )


def box_corners_lidar(boxes_lidar: Tensor) -> Tensor:
    """(N, 8, 3) corners of (x, y, z, w, l, h, yaw, ...) boxes, ordered as fd3d.data.geometry.box_corners.

    Corners 0-3 are the front face (+l/2 along the heading), 4-7 the back; z spans centre +- h/2.
    """
    _check_boxes(boxes_lidar)
    centre = boxes_lidar[:, :3]
    w, length, h, yaw = boxes_lidar[:, 3:7].unbind(dim=-1)
    signs = boxes_lidar.new_tensor(
        [
            [1, 1, 1, 1, -1, -1, -1, -1],  # along the heading (l)
            [1, -1, -1, 1, 1, -1, -1, 1],  # across it (w)
            [1, 1, -1, -1, 1, 1, -1, -1],  # up (h)
        ]
    )
    local_x = signs[0] * (length / 2)[:, None]  # (N, 8)
    local_y = signs[1] * (w / 2)[:, None]
    local_z = signs[2] * (h / 2)[:, None]
    cos, sin = yaw.cos()[:, None], yaw.sin()[:, None]
    x = centre[:, 0:1] + cos * local_x - sin * local_y
    y = centre[:, 1:2] + sin * local_x + cos * local_y
    z = centre[:, 2:3] + local_z
    return torch.stack([x, y, z], dim=-1)


def points_in_bev_boxes(points_xy: Tensor, boxes_lidar: Tensor) -> Tensor:
    """(N, P) bool: whether point p of row n (metric x, y) lies in the rotated footprint of box n.

    points_xy (N or 1, P, 2); boxes_lidar (N, >=7) as (x, y, z, w, l, h, yaw, ...); the boundary counts.
    """
    _check_boxes(boxes_lidar)
    bx, by, w, length, yaw = (boxes_lidar[:, k, None] for k in (0, 1, 3, 4, 6))  # each (N, 1)
    offset_x, offset_y = points_xy[..., 0] - bx, points_xy[..., 1] - by  # (N, P)
    cos, sin = yaw.cos(), yaw.sin()
    along = offset_x * cos + offset_y * sin  # in the box frame: along the heading (l), across it (w)
    across = -offset_x * sin + offset_y * cos
    return (along.abs() <= length / 2) & (across.abs() <= w / 2)


def bev_cell_centres(
    extent: tuple[float, float, float, float], height: int, width: int, like: Tensor
) -> tuple[Tensor, Tensor]:
    """Metric x of the `width` columns and y of the `height` rows of a BEV grid over extent (x0, y0, x1, y1):
    column j covers x in [x0 + j dx, x0 + (j + 1) dx), and its centre is x0 + (j + 0.5) dx (rows likewise).
    Dtype and device of `like`."""
    x0, y0, x1, y1 = (float(v) for v in extent)
    dx, dy = (x1 - x0) / width, (y1 - y0) / height
    centres_x = x0 + (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) * dx
    centres_y = y0 + (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) * dy
    return centres_x, centres_y


def bev_box_mask(
    boxes_lidar: Tensor, bev_h: int, bev_w: int, extent: tuple[float, float, float, float]
) -> Tensor:
    """(bev_h, bev_w) bool: union of the boxes' rotated top-down footprints (the BEV I^fg of Eq. 3-4).

    extent (x0, y0, x1, y1): row i covers y in [y0 + i*dy, y0 + (i+1)*dy), column j covers x likewise.
    A cell is inside a box when its centre lies in the rotated rectangle (boundary included); every box
    also marks the cell holding its centre (module docstring). Vectorised over boxes and cells, so it
    holds a few N * bev_h * bev_w temporaries: meant for the focal boxes, not hundreds of proposals.
    """
    _check_boxes(boxes_lidar)
    x0, y0, x1, y1 = (float(v) for v in extent)
    if bev_h <= 0 or bev_w <= 0 or x1 <= x0 or y1 <= y0:
        raise ValueError(f"need a positive grid and x1 > x0, y1 > y0, got {bev_h}x{bev_w} over {extent}")
    boxes_lidar = boxes_lidar.detach()  # a mask carries no gradient
    device = boxes_lidar.device
    mask = torch.zeros(bev_h, bev_w, dtype=torch.bool, device=device)
    if boxes_lidar.shape[0] == 0:
        return mask
    dx, dy = (x1 - x0) / bev_w, (y1 - y0) / bev_h
    centres_x, centres_y = bev_cell_centres(extent, bev_h, bev_w, boxes_lidar)  # (W,), (H,)
    grid_y, grid_x = torch.meshgrid(centres_y, centres_x, indexing="ij")
    cells = torch.stack([grid_x, grid_y], -1).view(1, bev_h * bev_w, 2)
    inside = points_in_bev_boxes(cells, boxes_lidar).view(-1, bev_h, bev_w)
    mask |= inside.any(dim=0)
    # the cell holding each box centre, when the centre is on the grid
    cols = torch.floor((boxes_lidar[:, 0] - x0) / dx).long()
    rows = torch.floor((boxes_lidar[:, 1] - y0) / dy).long()
    on_grid = (cols >= 0) & (cols < bev_w) & (rows >= 0) & (rows < bev_h)
    mask[rows[on_grid], cols[on_grid]] = True
    return mask


def pv_box_mask(
    boxes_lidar: Tensor, lidar2img: Tensor, image_size: tuple[int, int], feature_size: tuple[int, int]
) -> Tensor:
    """(Ncam, h, w) bool: per camera, the union of the boxes' projected 2D rectangles (the PV I^fg, Eq. 3-4).

    lidar2img (Ncam, 4, 4) maps LiDAR points to pixels of the network input of size image_size (H, W).
    A box's rectangle is the axis-aligned hull of its projected corners with depth > 1e-5; a box with
    all 8 corners behind the camera is skipped. When only some corners are in front, the hull of those
    alone is used: an approximation (the exact footprint would clip the box edges at the image plane).
    The rectangle is clipped to the image and skipped if it misses it. Feature cell (r, c) covers pixels
    [r*H/h, (r+1)*H/h) x [c*W/w, (c+1)*W/w) and is marked when its centre lies in the rectangle (boundary
    included); each kept rectangle also marks the cell holding its own centre (module docstring).
    """
    _check_boxes(boxes_lidar)
    if lidar2img.dim() != 3 or lidar2img.shape[1:] != (4, 4):
        raise ValueError(f"lidar2img must be (Ncam, 4, 4), got {tuple(lidar2img.shape)}")
    img_h, img_w = (float(v) for v in image_size)
    feat_h, feat_w = (int(v) for v in feature_size)
    if img_h <= 0 or img_w <= 0 or feat_h <= 0 or feat_w <= 0:
        raise ValueError(f"image_size {image_size} and feature_size {feature_size} must be positive")
    num_cams, device = lidar2img.shape[0], lidar2img.device
    mask = torch.zeros(num_cams, feat_h, feat_w, dtype=torch.bool, device=device)
    if boxes_lidar.shape[0] == 0:
        return mask
    dtype = lidar2img.dtype
    corners = box_corners_lidar(boxes_lidar.detach().to(device=device, dtype=dtype))  # (N, 8, 3)
    homogeneous = torch.cat([corners, torch.ones_like(corners[..., :1])], dim=-1)  # (N, 8, 4)
    projected = torch.einsum("cij,nkj->cnki", lidar2img, homogeneous)  # (Ncam, N, 8, 4)
    depth = projected[..., 2]
    visible = depth > _MIN_DEPTH
    pixels = projected[..., :2] / depth.clamp(min=_MIN_DEPTH)[..., None]  # (Ncam, N, 8, 2) as (u, v)
    inf = torch.tensor(float("inf"), dtype=dtype, device=device)
    low = torch.where(visible[..., None], pixels, inf).amin(dim=2)  # (Ncam, N, 2)
    high = torch.where(visible[..., None], pixels, -inf).amax(dim=2)
    size = low.new_tensor([img_w, img_h])
    # the image is [0, W) x [0, H): keep rectangles that reach into it
    keep = visible.any(dim=2) & (high >= 0).all(dim=-1) & (low < size).all(dim=-1)  # (Ncam, N)
    low = torch.maximum(low, torch.zeros_like(low))
    high = torch.minimum(high, size.expand_as(high))
    cell = low.new_tensor([img_w / feat_w, img_h / feat_h])
    centres_u = (torch.arange(feat_w, device=device, dtype=dtype) + 0.5) * cell[0]  # (w,)
    centres_v = (torch.arange(feat_h, device=device, dtype=dtype) + 0.5) * cell[1]  # (h,)
    in_u = (centres_u >= low[..., 0:1]) & (centres_u <= high[..., 0:1])  # (Ncam, N, w)
    in_v = (centres_v >= low[..., 1:2]) & (centres_v <= high[..., 1:2])  # (Ncam, N, h)
    inside = in_v[..., :, None] & in_u[..., None, :] & keep[..., None, None]  # (Ncam, N, h, w)
    mask |= inside.any(dim=1)
    # the cell holding each kept rectangle's centre
    cam_idx, box_idx = keep.nonzero(as_tuple=True)
    centre = (low[cam_idx, box_idx] + high[cam_idx, box_idx]) / 2  # (K, 2)
    cols = torch.floor(centre[:, 0] / cell[0]).long().clamp(0, feat_w - 1)
    rows = torch.floor(centre[:, 1] / cell[1]).long().clamp(0, feat_h - 1)
    mask[cam_idx, rows, cols] = True
    return mask


def selective_random_mask(focal: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Float I^m (..., H, W) of Eq. 5-6: 0 where a position is in the focal union and R < ratio, else 1.

    The paper writes I^fg with 0 inside a box (Eq. 3), merges instances with AND (Eq. 4) and the random
    mask I^r with OR (Eq. 6), so I^m is 0 exactly where (inside some box) and (R < r). `focal` here is
    True inside a focal box (= NOT I^fg), which gives the same I^m. With focal all True this is MGD's
    global random mask. R is uniform in [0, 1), so ratio 1 masks the whole focal union and 0 nothing.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if focal.dtype != torch.bool:
        raise ValueError(f"focal must be a bool tensor, got {focal.dtype}")
    random = torch.rand(focal.shape, generator=generator, device=focal.device)
    masked = focal & (random < ratio)
    return (~masked).float()
