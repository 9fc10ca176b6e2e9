"""A controlled imperfect expert: object features smeared along the camera rays behind each object.

The paper's premise (Sec. 1, Fig. 2, Table 4c) is that a camera-only expert's BEV carries ray-shaped
artefacts behind objects (depth is ambiguous along a ray), so plain imitation of the whole BEV copies
errors, while FD3D's focal regions avoid them. The synthetic world's expert may not show them; this makes
them on purpose, so a study can measure how much each method loses when the expert has them.

Every ground-truth box adds its own BEV feature (the cell of its centre) to the cells behind it along the
ray from the ego origin (the cameras sit within a metre or two of it), within half the box's width of
the ray, from its far edge to `length` metres beyond the centre, decaying as exp(-distance / decay).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fd3d.distill.masks import bev_cell_centres


def smear_along_rays(
    bev: Tensor,
    gt_boxes: list[Tensor],
    extent: tuple[float, float, float, float],
    strength: float,
    length: float,
    decay: float,
) -> Tensor:
    """(B, C, H, W) BEV plus `strength` x each box's centre feature along its ray behind it (a new tensor).

    gt_boxes: per sample (N, >=7) LiDAR-frame boxes (x, y, z, w, l, h, yaw, ...). Row i of the BEV covers
    y in [y0 + i dy, y0 + (i + 1) dy), column j covers x likewise (extent = (x0, y0, x1, y1)). A cell at
    distance t behind the centre (along the ray), with t > l/2 and t <= `length`, and within w/2 of the
    ray gets exp(-t / decay) of the box's feature, times `strength`. Boxes whose centre is off the map add
    nothing.
    """
    if strength < 0 or length <= 0 or decay <= 0:
        raise ValueError(f"need strength >= 0, length > 0 and decay > 0, got {strength}, {length}, {decay}")
    batch, _, height, width = bev.shape
    if len(gt_boxes) != batch:
        raise ValueError(f"{len(gt_boxes)} box sets for a batch of {batch}")
    x0, y0, x1, y1 = (float(v) for v in extent)
    dx, dy = (x1 - x0) / width, (y1 - y0) / height
    xs, ys = bev_cell_centres(extent, height, width, bev)
    cells = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)  # (H*W, 2) as x, y
    smeared = bev.clone()
    for b, boxes in enumerate(gt_boxes):
        boxes = boxes.to(bev)
        cols = torch.floor((boxes[:, 0] - x0) / dx).long()
        rows = torch.floor((boxes[:, 1] - y0) / dy).long()
        on_map = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        boxes, cols, rows = boxes[on_map], cols[on_map], rows[on_map]
        if len(boxes) == 0:
            continue
        centres = boxes[:, :2]
        ranges = centres.norm(dim=1).clamp(min=1e-6)
        direction = centres / ranges[:, None]  # (N, 2) unit ray from the ego through the centre
        relative = cells[None] - centres[:, None]  # (N, H*W, 2)
        behind = (relative * direction[:, None]).sum(-1)  # distance past the centre along the ray
        across = (relative[..., 0] * direction[:, None, 1] - relative[..., 1] * direction[:, None, 0]).abs()
        inside = (behind > boxes[:, 4:5] / 2) & (behind <= length) & (across <= boxes[:, 3:4] / 2)
        weights = torch.where(inside, torch.exp(-behind / decay), torch.zeros_like(behind))  # (N, H*W)
        features = bev[b, :, rows, cols]  # (C, N): each box's own feature, read before any smearing
        smeared[b] += strength * (features @ weights).view(-1, height, width)
    return smeared
