"""Figures: the paper's Fig. 2 and 5 (feature activations, boxes in BEV), boxes on the cameras, metric bars.

- `feature_activation`: the usual activation map of distillation papers, the channel-wise mean of
  absolute values, min-max normalised to [0, 1].
- `plot_bev_activations`: one BEV activation panel per model at its metric extent (LiDAR frame, x right,
  y up = forward), the ego at the origin.
- `plot_pv_activations`: the six cameras in the nuScenes layout (front row FRONT_LEFT, FRONT, FRONT_RIGHT;
  back row BACK_LEFT, BACK, BACK_RIGHT), the activation upsampled to the image and overlaid.
- `plot_boxes_bev`: ground truth in green and predictions above a score threshold in blue, one panel
  per model, as in Fig. 5.
- `plot_boxes_cameras`: the same boxes as 3D wireframes on the six camera images (clipped at the image
  plane), predictions labelled with class and score.
- `plot_metric_bars`: NDS / mAP (or any devkit metric) of several models as labelled grouped bars.
- `visualize_sample`: all of the above for one sample of a split and a few detectors.

Figures are drawn on `matplotlib.figure.Figure` objects saved through the Agg canvas; pyplot (and with
it the process-wide backend) is never touched, so the module is safe to import in notebooks and servers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle
from torch import Tensor, nn

from fd3d.data import geometry
from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.data.rig import CAMERA_NAMES
from fd3d.modeling.evaluating import evaluating

logger = logging.getLogger(__name__)

Extent = tuple[float, float, float, float]  # (x0, y0, x1, y1) metres, LiDAR frame
Predictions = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (N, >=7), scores (N,), labels (N,)

# The nuScenes figure layout: the front cameras above, the back cameras below, left to right.
PV_GRID: tuple[tuple[str, ...], ...] = (
    ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"),
    ("CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"),
)
GT_COLOR = (0.0, 0.7, 0.0)  # green, as in the paper's Fig. 2 and Fig. 5
PRED_COLOR = (0.0, 0.2, 1.0)  # blue
ACTIVATION_CMAP = "jet"
PV_ALPHA = 0.5
PANEL_INCHES = 5.0
DPI = 100
EGO_SIZE_WL = (1.9, 4.5)  # the ego car drawn at the origin, length along LiDAR +y (forward)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ------------------------------------------------------------------------------------------ arrays


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


# ----------------------------------------------------------------------------------------- figures


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=DPI)
    return target


def _draw_ego(ax) -> None:
    width, length = EGO_SIZE_WL
    ax.add_patch(Rectangle((-width / 2, -length / 2), width, length, facecolor="black", edgecolor="none"))


def _set_metric_axes(ax, extent: Extent) -> None:
    x0, y0, x1, y1 = extent
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _check_extent(extent: Sequence[float]) -> Extent:
    if len(extent) != 4:
        raise ValueError(f"extent must be (x0, y0, x1, y1), got {extent}")
    x0, y0, x1, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"extent must have x1 > x0 and y1 > y0, got {extent}")
    return x0, y0, x1, y1


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
        x0, y0, x1, y1 = _check_extent(extent[name] if isinstance(extent, Mapping) else extent)
        image = ax.imshow(
            activation, origin="lower", extent=(x0, x1, y0, y1), cmap=ACTIVATION_CMAP, vmin=0.0, vmax=1.0
        )
        ax.plot([0.0], [0.0], marker="^", color="white", markeredgecolor="black", markersize=8)
        if gt_boxes is not None:
            _draw_boxes(ax, np.asarray(gt_boxes, dtype=np.float64), "white")
        _set_metric_axes(ax, (x0, y0, x1, y1))
        ax.set_title(name)
    figure.colorbar(image, ax=list(axes), label="activation (min-max normalised)", shrink=0.9)
    if gt_boxes is not None:
        figure.suptitle("BEV activation (mean |feature| over channels); white: ground-truth footprints")
    return _save(figure, path)


def _camera_grid(images: np.ndarray) -> tuple[Figure, list[tuple[int, object]]]:
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
    figure, panels = _camera_grid(images)
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
    return _save(figure, path)


def _draw_boxes(ax, boxes: np.ndarray, color) -> None:
    """Footprints as closed outlines, with a line from the centre to the front edge for the heading."""
    if len(boxes) == 0:
        return
    for k, corners in enumerate(bev_footprint(boxes)):
        ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor=color, linewidth=1.5))
        front = corners[:2].mean(axis=0)
        ax.plot([boxes[k, 0], front[0]], [boxes[k, 1], front[1]], color=color, linewidth=1.0)


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
    x0, y0, x1, y1 = _check_extent(extent)
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
        _draw_boxes(ax, gt_boxes, GT_COLOR)
        _draw_boxes(ax, kept, PRED_COLOR)
        _set_metric_axes(ax, (x0, y0, x1, y1))
        ax.grid(color="0.85", linewidth=0.5)
        ax.set_axisbelow(True)
        ax.set_title(f"{name}: {len(kept)} predictions, {len(gt_boxes)} GT", fontsize=10)
    figure.suptitle(f"green: ground truth, blue: predictions with score >= {score_threshold:g}", fontsize=10)
    return _save(figure, path)


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
    figure, panels = _camera_grid(images)
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
    return _save(figure, path)


def plot_metric_bars(
    results: Mapping[str, Mapping[str, float]], path: str | os.PathLike, keys: Sequence[str] = ("NDS", "mAP")
) -> Path:
    """Grouped bars of `keys` (devkit 0-1 scale) for every model in `results`, each bar labelled."""
    if not results:
        raise ValueError("plot_metric_bars needs the metrics of at least one model")
    missing = {name: [k for k in keys if k not in row] for name, row in results.items()}
    missing = {name: k for name, k in missing.items() if k}
    if missing:
        raise KeyError(f"metrics missing: {missing}")
    figure = Figure(figsize=(1.6 * len(results) * len(keys) + 1.5, 3.6), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / len(results)
    for m, (name, row) in enumerate(results.items()):
        positions = np.arange(len(keys)) + (m - (len(results) - 1) / 2) * width
        bars = ax.bar(positions, [row[k] for k in keys], width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(np.arange(len(keys)), keys)
    ax.set_ylabel("official nuScenes metric (0-1)")
    ax.set_ylim(0, max(1e-3, max(row[k] for row in results.values() for k in keys)) * 1.2)
    ax.legend(fontsize=8)
    ax.grid(axis="y", color="0.85", linewidth=0.5)
    ax.set_axisbelow(True)
    return _save(figure, path)


# ------------------------------------------------------------------------------------------ sample


def _batch_to(batch: dict, device: torch.device) -> dict:
    moved = {}
    for key, value in batch.items():
        if isinstance(value, Tensor):
            moved[key] = value.to(device)
        elif key == "queue":
            moved[key] = [_batch_to(frame, device) for frame in value]
        elif isinstance(value, list) and value and isinstance(value[0], Tensor):
            moved[key] = [item.to(device) for item in value]
        else:
            moved[key] = value
    return moved


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def check_model_name(name: str) -> str:
    """A model name usable in a file name: letters, digits, `_`, `-`, `.`, starting with a letter/digit."""
    if not _NAME.match(name):
        raise ValueError(
            f"model name {name!r} must be letters, digits, '_', '-' or '.', starting with a letter or digit "
            "(it becomes part of a file name)"
        )
    return name


def run_model_on_sample(model: nn.Module, dataset: NuScenesDataset, sample_index: int) -> dict:
    """Features and predictions of one sample: the batch of one, `features`, `predictions` (numpy)."""
    batch = collate_samples([dataset[sample_index]])
    with evaluating(model):
        on_device = _batch_to(batch, _model_device(model))
        features = model.extract_features(on_device)
        outputs = model.forward_head(features, on_device)
        prediction = model.predict(outputs)[0]
    return {
        "batch": batch,
        "features": features,
        "predictions": (
            prediction["boxes_lidar"].cpu().numpy(),
            prediction["scores"].cpu().numpy(),
            prediction["labels"].cpu().numpy(),
        ),
    }


def visualize_sample(
    models: Mapping[str, nn.Module],
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    sample_index: int,
    out_dir: str | os.PathLike,
    score_threshold: float = 0.3,
    classes: Sequence[str] = DETECTION_CLASSES,
) -> dict[str, Path]:
    """Write the activation and box figures of one sample for every model; returns {figure: path}.

    Each model reads the sample decoded at its own image size, point-cloud range and queue length. Keys:
    `bev_activation` (models with a BEV only; absent, with a log message, when none has one),
    `pv_activation_<name>` (first FPN level, per model), `boxes_cameras_<name>` (ground truth and the
    model's predictions above `score_threshold` on the six images as the first model reads them) and
    `boxes_bev` (ground truth in the first model's point-cloud range, predictions of every model).
    """
    if not models:
        raise ValueError("visualize_sample needs at least one model")
    for name in models:
        check_model_name(name)
    out = Path(out_dir)
    datasets: dict[tuple, NuScenesDataset] = {}
    results: dict[str, dict] = {}
    for name, model in models.items():
        pc_range = tuple(float(v) for v in model.pc_range.tolist())
        key = (tuple(model.image_size), pc_range, int(model.queue_length))
        if key not in datasets:
            datasets[key] = NuScenesDataset(
                dataroot, version, split, model.image_size, pc_range, classes, int(model.queue_length)
            )
        dataset = datasets[key]
        if not 0 <= sample_index < len(dataset):
            raise IndexError(
                f"sample index {sample_index} out of range: split {split!r} has {len(dataset)} samples"
            )
        results[name] = run_model_on_sample(model, dataset, sample_index)
    written: dict[str, Path] = {}
    bev_maps = {
        name: feature_activation(result["features"].bev[0])
        for name, result in results.items()
        if result["features"].bev is not None
    }
    if bev_maps:
        extents = {name: results[name]["features"].bev_extent for name in bev_maps}
        gt_of_first = results[next(iter(results))]["batch"]["gt_boxes"][0].numpy()
        written["bev_activation"] = plot_bev_activations(
            bev_maps, extents, out / "bev_activation.png", gt_of_first
        )
    else:
        logger.info("no BEV activation figure: none of %s has a BEV map", list(models))
    for name, result in results.items():
        batch = result["batch"]
        images = batch["images"][0].permute(0, 2, 3, 1).numpy()  # (Ncam, H, W, 3) uint8
        maps = pv_activation(result["features"].pv[0][0])
        token = batch["sample_token"][0]
        written[f"pv_activation_{name}"] = plot_pv_activations(
            images, maps, out / f"pv_activation_{name}.png", title=f"{name}: first FPN level, sample {token}"
        )
    first = results[next(iter(results))]
    images = first["batch"]["images"][0].permute(0, 2, 3, 1).numpy()
    gt_boxes = first["batch"]["gt_boxes"][0].numpy()
    for name, result in results.items():
        written[f"boxes_cameras_{name}"] = plot_boxes_cameras(
            images,
            first["batch"]["lidar2img"][0].numpy(),
            gt_boxes,
            result["predictions"],
            out / f"boxes_cameras_{name}.png",
            title=f"{name}, sample {first['batch']['sample_token'][0]}",
            score_threshold=score_threshold,
            classes=classes,
        )
    pc_range = models[next(iter(models))].pc_range.tolist()
    written["boxes_bev"] = plot_boxes_bev(
        gt_boxes,
        {name: result["predictions"] for name, result in results.items()},
        (pc_range[0], pc_range[1], pc_range[3], pc_range[4]),
        out / "boxes_bev.png",
        score_threshold,
    )
    return written
