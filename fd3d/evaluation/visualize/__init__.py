"""Figures: the paper's Fig. 2 and 5 (feature activations, boxes in BEV), boxes on the cameras, metric bars.

One module per kind of figure:

- `activations`: `feature_activation`, the usual activation map of distillation papers (the channel-wise
  mean of absolute values, min-max normalised to [0, 1]); `plot_bev_activations`, one BEV panel per
  model at its metric extent (LiDAR frame, x right, y up = forward, the ego at the origin);
  `plot_pv_activations`, the six cameras in the nuScenes layout (front row FRONT_LEFT, FRONT,
  FRONT_RIGHT; back row BACK_LEFT, BACK, BACK_RIGHT), the activation upsampled and overlaid.
- `boxes_bev`: `plot_boxes_bev`, ground truth in green and predictions above a score threshold in blue,
  one panel per model, as in Fig. 5.
- `boxes_cameras`: `plot_boxes_cameras`, the same boxes as 3D wireframes on the six camera images
  (clipped at the image plane), predictions labelled with class and score.
- `metrics`: `plot_metric_bars`, NDS / mAP (or any devkit metric) of several models as grouped bars.
- `sample`: `visualize_sample`, all of the above for one sample of a split and a few detectors.
- `common`: what they share (colours, sizes, the camera grid, BEV footprints, saving).

Figures are drawn on `matplotlib.figure.Figure` objects saved through the Agg canvas; pyplot (and with
it the process-wide backend) is never touched, so the package is safe to import in notebooks and servers.
"""

from fd3d.evaluation.visualize.activations import (
    ACTIVATION_CMAP,
    PV_ALPHA,
    feature_activation,
    plot_bev_activations,
    plot_pv_activations,
    pv_activation,
    upsample_map,
)
from fd3d.evaluation.visualize.boxes_bev import EGO_SIZE_WL, plot_boxes_bev
from fd3d.evaluation.visualize.boxes_cameras import (
    BOX_EDGES,
    NEAR_PLANE,
    plot_boxes_cameras,
    project_box_edges,
)
from fd3d.evaluation.visualize.common import (
    DPI,
    GT_COLOR,
    PANEL_INCHES,
    PRED_COLOR,
    PV_GRID,
    Extent,
    Predictions,
    bev_footprint,
)
from fd3d.evaluation.visualize.metrics import plot_metric_bars
from fd3d.evaluation.visualize.sample import check_model_name, run_model_on_sample, visualize_sample

__all__ = [
    "ACTIVATION_CMAP",
    "BOX_EDGES",
    "DPI",
    "EGO_SIZE_WL",
    "GT_COLOR",
    "NEAR_PLANE",
    "PANEL_INCHES",
    "PRED_COLOR",
    "PV_ALPHA",
    "PV_GRID",
    "Extent",
    "Predictions",
    "bev_footprint",
    "check_model_name",
    "feature_activation",
    "plot_bev_activations",
    "plot_boxes_bev",
    "plot_boxes_cameras",
    "plot_metric_bars",
    "plot_pv_activations",
    "project_box_edges",
    "pv_activation",
    "run_model_on_sample",
    "upsample_map",
    "visualize_sample",
]
