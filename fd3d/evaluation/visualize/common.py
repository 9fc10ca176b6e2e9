"""What the figures share: colours and sizes, the camera grid, metric BEV axes, box footprints, saving.

Figures are drawn on `matplotlib.figure.Figure` objects saved through the Agg canvas; pyplot (and with
it the process-wide backend) is never touched, so the package is safe to import in notebooks and servers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from fd3d.data.rig import CAMERA_NAMES

Extent = tuple[float, float, float, float]  # (x0, y0, x1, y1) metres, LiDAR frame
Predictions = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (N, >=7), scores (N,), labels (N,)

# The nuScenes figure layout: the front cameras above, the back cameras below, left to right.
PV_GRID: tuple[tuple[str, ...], ...] = (
    ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"),
    ("CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"),
)
GT_COLOR = (0.0, 0.7, 0.0)  # green, as in the paper's Fig. 2 and Fig. 5
PRED_COLOR = (0.0, 0.2, 1.0)  # blue
PANEL_INCHES = 5.0
DPI = 100


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Save `figure` as a PNG at `DPI` (creating its folder); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=DPI)
    return target


def check_extent(extent: Sequence[float]) -> Extent:
    """`extent` as (x0, y0, x1, y1) floats, or a ValueError naming it when it is not a box in the plane."""
    if len(extent) != 4:
        raise ValueError(f"extent must be (x0, y0, x1, y1), got {extent}")
    x0, y0, x1, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"extent must have x1 > x0 and y1 > y0, got {extent}")
    return x0, y0, x1, y1


def set_metric_axes(ax, extent: Extent) -> None:
    """BEV axes in metres over `extent`, equal aspect, so pixel positions follow metric ones."""
    x0, y0, x1, y1 = extent
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def bev_footprint(boxes: np.ndarray) -> np.ndarray:
    """(N, 4, 2) top-down corners (x, y) of (x, y, z, w, l, h, yaw, ...) boxes in the LiDAR frame.

    l runs along the heading yaw (counter-clockwise from +x), w across it. Drawing order: front-left,
    front-right, back-right, back-left (front = +l/2 along the heading, left = +w/2), so corners 0-1 are
    the front edge.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] < 7:
        raise ValueError(f"boxes must be (N, >=7) as (x, y, z, w, l, h, yaw, ...), got shape {boxes.shape}")
    along = np.array([1.0, 1.0, -1.0, -1.0]) * boxes[:, 4:5] / 2  # (N, 4) along the heading
    across = np.array([1.0, -1.0, -1.0, 1.0]) * boxes[:, 3:4] / 2  # (N, 4) to the left of it
    cos, sin = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])
    x = boxes[:, 0:1] + cos * along - sin * across
    y = boxes[:, 1:2] + sin * along + cos * across
    return np.stack([x, y], axis=-1)


def draw_footprints(ax, boxes: np.ndarray, color) -> None:
    """Footprints as closed outlines, with a line from the centre to the front edge for the heading."""
    if len(boxes) == 0:
        return
    for k, corners in enumerate(bev_footprint(boxes)):
        ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor=color, linewidth=1.5))
        front = corners[:2].mean(axis=0)
        ax.plot([boxes[k, 0], front[0]], [boxes[k, 1], front[1]], color=color, linewidth=1.0)


def camera_grid(images: np.ndarray) -> tuple[Figure, list[tuple[int, object]]]:
    """A figure in the nuScenes camera layout (`PV_GRID`) with each image drawn and its camera as title;
    returns it and the (camera index, axes) panels. `images` (Ncam, H, W, 3) in CAMERA_NAMES order."""
    cams = len(CAMERA_NAMES)
    if images.ndim != 4 or images.shape[0] != cams or images.shape[3] != 3:
        raise ValueError(f"images must be ({cams}, H, W, 3), got shape {images.shape}")
    height, width = images.shape[1:3]
    rows, cols = len(PV_GRID), len(PV_GRID[0])
    panel_w = PANEL_INCHES * 0.8
    figure = Figure(figsize=(panel_w * cols, panel_w * height / width * rows + 0.8), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    panels = []
    for r, row in enumerate(PV_GRID):
        for c, camera in enumerate(row):
            index, ax = CAMERA_NAMES.index(camera), axes[r, c]
            ax.imshow(images[index])
            ax.set_title(camera, fontsize=9)
            ax.set_axis_off()
            panels.append((index, ax))
    return figure, panels
