"""Feature activation maps (the paper's Fig. 2 and 5): BEV panels per model and the six camera views.

The activation is the usual one of distillation papers: the channel-wise mean of absolute values,
min-max normalised to [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from fd3d.data.rig import CAMERA_NAMES
from fd3d.evaluation.visualize.common import (
    PANEL_INCHES,
    camera_grid,
    check_extent,
    draw_footprints,
    save_figure,
    set_metric_axes,
)

ACTIVATION_CMAP = "jet"
PV_ALPHA = 0.5


def feature_activation(feature: Tensor) -> np.ndarray:
    """(H, W) activation of a (C, H, W) feature map: mean over channels of |feature|, min-max to [0, 1].

    The usual activation map of feature-distillation papers (FD3D Fig. 2 and 5, FGD, MGD). A constant map
    (no contrast) gives zeros.
    """
    if feature.dim() != 3:
        raise ValueError(f"feature must be (C, H, W), got {tuple(feature.shape)}")
    activation = feature.detach().float().abs().mean(dim=0).cpu().numpy()
    low, high = float(activation.min()), float(activation.max())
    if high - low <= 0:
        return np.zeros_like(activation)
    return (activation - low) / (high - low)


def pv_activation(pv: Tensor) -> np.ndarray:
    """(Ncam, h, w) activations of one PV level (Ncam, C, h, w), normalised jointly over the cameras.

    One normalisation for all cameras keeps views comparable: a camera that sees only background stays
    dark instead of being stretched to the full range.
    """
    if pv.dim() != 4:
        raise ValueError(f"pv must be (Ncam, C, h, w), got {tuple(pv.shape)}")
    side_by_side = pv.permute(1, 2, 0, 3).flatten(2)  # (C, h, Ncam * w)
    return np.stack(np.split(feature_activation(side_by_side), pv.shape[0], axis=1))


def upsample_map(activation: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to `size` (H, W), pixel centres aligned as for a strided feature."""
    if activation.ndim != 2:
        raise ValueError(f"activation must be (h, w), got shape {activation.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(activation, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()


def plot_bev_activations(
    maps: Mapping[str, np.ndarray],
    extent: Sequence[float] | Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    gt_boxes: np.ndarray | None = None,
) -> Path:
    """One row of BEV activation panels (one per model), saved as a PNG; returns the path.

    `maps[name]` is (bev_h, bev_w) in [0, 1] with row i along y (LiDAR frame); `extent` (x0, y0, x1, y1)
    is shared or given per name. Drawn with x right and y up (forward), the ego at the origin. With
    `gt_boxes` (N, >=7) their footprints are outlined in white, so activation on and off objects (and the
    rays behind them, Sec. 1 of the paper) can be told apart.
    """
    if not maps:
        raise ValueError("plot_bev_activations needs at least one map")
    figure = Figure(figsize=(PANEL_INCHES * len(maps) + 1.0, PANEL_INCHES), layout="constrained")
    axes = figure.subplots(1, len(maps), squeeze=False)[0]
    image = None
    for ax, (name, activation) in zip(axes, maps.items(), strict=True):
        if np.ndim(activation) != 2:
            raise ValueError(f"BEV map {name!r} must be (bev_h, bev_w), got shape {np.shape(activation)}")
        x0, y0, x1, y1 = check_extent(extent[name] if isinstance(extent, Mapping) else extent)
        image = ax.imshow(
            activation, origin="lower", extent=(x0, x1, y0, y1), cmap=ACTIVATION_CMAP, vmin=0.0, vmax=1.0
        )
        ax.plot([0.0], [0.0], marker="^", color="white", markeredgecolor="black", markersize=8)
        if gt_boxes is not None:
            draw_footprints(ax, np.asarray(gt_boxes, dtype=np.float64), "white")
        set_metric_axes(ax, (x0, y0, x1, y1))
        ax.set_title(name)
    figure.colorbar(image, ax=list(axes), label="activation (min-max normalised)", shrink=0.9)
    if gt_boxes is not None:
        figure.suptitle("BEV activation (mean |feature| over channels); white: ground-truth footprints")
    return save_figure(figure, path)


def plot_pv_activations(
    images: np.ndarray, maps: np.ndarray, path: str | os.PathLike, title: str = ""
) -> Path:
    """The six cameras in a 2x3 grid, each image with its activation upsampled and overlaid; a PNG.

    `images` (Ncam, H, W, 3) uint8 and `maps` (Ncam, h, w) in [0, 1] follow `fd3d.data.rig.CAMERA_NAMES`
    order; the grid is the nuScenes one (`PV_GRID`), camera names as panel titles.
    """
    images, maps = np.asarray(images), np.asarray(maps)
    cams = len(CAMERA_NAMES)
    if maps.ndim != 3 or maps.shape[0] != cams:
        raise ValueError(f"maps must be ({cams}, h, w), got shape {maps.shape}")
    figure, panels = camera_grid(images)
    height, width = images.shape[1:3]
    for index, ax in panels:
        ax.imshow(
            upsample_map(maps[index], (height, width)),
            cmap=ACTIVATION_CMAP,
            vmin=0.0,
            vmax=1.0,
            alpha=PV_ALPHA,
        )
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)
