"""Boxes in BEV (the paper's Fig. 5): ground truth and each model's predictions, one panel per model."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fd3d.evaluation.visualize.common import (
    GT_COLOR,
    PANEL_INCHES,
    PRED_COLOR,
    Predictions,
    check_extent,
    draw_footprints,
    save_figure,
    set_metric_axes,
)

EGO_SIZE_WL = (1.9, 4.5)  # the ego car drawn at the origin, length along LiDAR +y (forward)


def _draw_ego(ax) -> None:
    width, length = EGO_SIZE_WL
    ax.add_patch(Rectangle((-width / 2, -length / 2), width, length, facecolor="black", edgecolor="none"))


def plot_boxes_bev(
    gt_boxes: np.ndarray,
    predictions: Mapping[str, Predictions],
    extent: Sequence[float],
    path: str | os.PathLike,
    score_threshold: float = 0.3,
) -> Path:
    """Boxes in BEV, one panel per model: ground truth green, predictions with score >= threshold blue.

    Boxes are (x, y, z, w, l, h, yaw, ...) in the LiDAR frame; the ego sits at the origin (black), axes
    in metres over `extent` (x0, y0, x1, y1) with equal aspect, x right, y up. Each panel is
    `PANEL_INCHES` square at `DPI`, so pixel positions follow the metric ones predictably.
    """
    if not predictions:
        raise ValueError("plot_boxes_bev needs predictions of at least one model")
    x0, y0, x1, y1 = check_extent(extent)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)
    figure = Figure(figsize=(PANEL_INCHES * len(predictions), PANEL_INCHES + 0.4), layout="constrained")
    axes = figure.subplots(1, len(predictions), squeeze=False)[0]
    for ax, (name, (boxes, scores, labels)) in zip(axes, predictions.items(), strict=True):
        boxes, scores = np.asarray(boxes, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        if len(boxes) != len(scores) or len(scores) != len(labels):
            raise ValueError(
                f"predictions of {name!r}: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels"
            )
        kept = boxes[scores >= score_threshold]
        _draw_ego(ax)
        draw_footprints(ax, gt_boxes, GT_COLOR)
        draw_footprints(ax, kept, PRED_COLOR)
        set_metric_axes(ax, (x0, y0, x1, y1))
        ax.grid(color="0.85", linewidth=0.5)
        ax.set_axisbelow(True)
        ax.set_title(f"{name}: {len(kept)} predictions, {len(gt_boxes)} GT", fontsize=10)
    figure.suptitle(f"green: ground truth, blue: predictions with score >= {score_threshold:g}", fontsize=10)
    return save_figure(figure, path)
