"""3D boxes as wireframes on the six camera images, clipped at the image plane, predictions labelled."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fd3d.data import geometry
from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.rig import CAMERA_NAMES
from fd3d.evaluation.visualize.common import GT_COLOR, PRED_COLOR, Predictions, camera_grid, save_figure

# Wireframe of fd3d.data.geometry.box_corners' layout: front face 0-3, back face 4-7, then the four sides;
# the front face also gets its diagonals so the heading reads at a glance (as the devkit's renders do).
BOX_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
    (0, 4), (1, 5), (2, 6), (3, 7), (0, 2), (1, 3),
)  # fmt: skip
LABEL_BOX = {"facecolor": PRED_COLOR, "pad": 1, "linewidth": 0}
NEAR_PLANE = 0.1  # metres: edges are clipped at this depth in front of the camera before projecting


def project_box_edges(corners: np.ndarray, lidar2img: np.ndarray, near: float = NEAR_PLANE) -> np.ndarray:
    """(E, 2, 2) pixel end points of a box's edges in one camera; edges wholly behind it are dropped.

    corners (8, 3) in the LiDAR frame; lidar2img (4, 4) maps homogeneous LiDAR points to (u*d, v*d, d, 1).
    The map is projective-linear, so a 3D segment cut at depth `near` is the same linear blend of its two
    homogeneous images: an edge crossing the image plane is clipped there instead of wrapping around.
    """
    homogeneous = np.concatenate([corners, np.ones((len(corners), 1))], axis=1) @ np.asarray(lidar2img).T
    segments = []
    for a, b in BOX_EDGES:
        pa, pb = homogeneous[a], homogeneous[b]
        if pa[2] < near and pb[2] < near:
            continue
        if pa[2] < near:
            pa = pa + (near - pa[2]) / (pb[2] - pa[2]) * (pb - pa)
        elif pb[2] < near:
            pb = pb + (near - pb[2]) / (pa[2] - pb[2]) * (pa - pb)
        segments.append([pa[:2] / pa[2], pb[:2] / pb[2]])
    return np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)


def _draw_box_on_image(ax, corners: np.ndarray, lidar2img: np.ndarray, size: tuple[int, int], color):
    """Draw the wireframe; returns its highest point inside the image (u, v), or None when it is unseen."""
    height, width = size
    points = project_box_edges(corners, lidar2img).reshape(-1, 2)
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    if not inside.any():
        return None
    for (u0, v0), (u1, v1) in points.reshape(-1, 2, 2):
        ax.plot([u0, u1], [v0, v1], color=color, linewidth=1.0)
    seen = points[inside]
    return seen[np.argmin(seen[:, 1])]


def plot_boxes_cameras(
    images: np.ndarray,
    lidar2img: np.ndarray,
    gt_boxes: np.ndarray,
    prediction: Predictions,
    path: str | os.PathLike,
    title: str = "",
    score_threshold: float = 0.3,
    classes: Sequence[str] = DETECTION_CLASSES,
) -> Path:
    """3D boxes drawn on the six camera images (nuScenes grid): ground truth green, predictions blue.

    images (Ncam, H, W, 3) uint8 and lidar2img (Ncam, 4, 4) in `fd3d.data.rig.CAMERA_NAMES` order, the
    matrices mapping to pixels of these images; boxes (N, >=7) in the LiDAR frame. Each prediction at or
    above `score_threshold` is labelled with its class and score where it is seen.
    """
    images, lidar2img = np.asarray(images), np.asarray(lidar2img, dtype=np.float64)
    cams = len(CAMERA_NAMES)
    if lidar2img.shape != (cams, 4, 4):
        raise ValueError(f"lidar2img must be ({cams}, 4, 4), got shape {lidar2img.shape}")
    boxes, scores, labels = (np.asarray(a) for a in prediction)
    kept = scores >= score_threshold
    boxes, scores, labels = boxes[kept], scores[kept], labels[kept]
    to_corners = [(np.asarray(gt_boxes, dtype=np.float64), GT_COLOR, None), (boxes, PRED_COLOR, labels)]
    figure, panels = camera_grid(images)
    height, width = images.shape[1:3]
    for index, ax in panels:
        for box_set, color, box_labels in to_corners:
            for k, box in enumerate(box_set):
                corners = geometry.box_corners(box[:3], box[3:6], float(box[6]))
                top = _draw_box_on_image(ax, corners, lidar2img[index], (height, width), color)
                if top is not None and box_labels is not None:
                    label = f"{classes[int(box_labels[k])]} {scores[k]:.2f}"
                    ax.text(*top, label, color="white", fontsize=6, clip_on=True, bbox=LABEL_BOX)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
    caption = f"green: ground truth, blue: predictions with score >= {score_threshold:g} ({len(boxes)})"
    figure.suptitle(f"{title}\n{caption}" if title else caption, fontsize=10)
    return save_figure(figure, path)
