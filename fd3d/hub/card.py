"""The model card, a model folder's README.md: architecture, input size, backbone, parameters, GFLOPs,
the expert and method it was distilled with, provenance notes, the nuScenes metrics and how to load it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from fvcore.common.config import CfgNode
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

from fd3d.data.schema import REAL_NUSCENES
from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from fd3d.hub.folder import CONFIG_NAME, WEIGHTS_NAME


def check_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The seven devkit metrics of `metrics`, in `METRIC_KEYS` order, as finite floats; others dropped."""
    missing = [key for key in METRIC_KEYS if key not in metrics]
    if missing:
        raise ValueError(
            f"metrics lack {missing}; expected the keys {list(METRIC_KEYS)}, got {sorted(metrics)}"
        )
    table = {key: float(metrics[key]) for key in METRIC_KEYS}
    bad = {key: value for key, value in table.items() if not math.isfinite(value)}
    if bad:
        raise ValueError(f"metrics must be finite numbers, got {bad}")
    return table


def model_card(
    model: nn.Module,
    cfg: CfgNode,
    name: str,
    metrics: dict[str, float] | None,
    gflops: float | None,
    distilled_from: str | None,
    method: str | None,
    eval_dataset: str,
    notes: Sequence[str] = (),
) -> ModelCard:
    """The card of `model` saved as `name`; `metrics` as `check_metrics` returns them, or None for a
    model that was not evaluated (the card says so)."""
    architecture = cfg.MODEL.META_ARCHITECTURE
    eval_results = None
    if metrics is not None:
        eval_results = [
            EvalResult(
                task_type="3d-object-detection",
                task_name="3D object detection",
                dataset_type="nuscenes" if eval_dataset == REAL_NUSCENES else "synthetic-nuscenes-format",
                dataset_name=eval_dataset,
                metric_type=key.lower(),
                metric_name=key,
                metric_value=round(value, 4),
            )
            for key, value in metrics.items()
        ]
    card_data = ModelCardData(
        library_name="fd3d",
        tags=["3d-object-detection", "nuscenes", "knowledge-distillation", architecture],
        model_name=name,
        eval_results=eval_results,
    )
    height, width = cfg.INPUT.IMAGE_SIZE
    params_m = sum(parameter.numel() for parameter in model.parameters()) / 1e6
    lines = [
        f"# {name}",
        "",
        f"A camera-only 3D object detector ({architecture}) saved by fd3d (knowledge distillation for "
        "camera-only 3D detectors).",
        "",
        f"- **Architecture:** {architecture}, {cfg.MODEL.HEAD.NUM_QUERIES} queries, "
        f"{cfg.MODEL.HEAD.NUM_LAYERS} decoder layers, {cfg.MODEL.HEAD.EMBED_DIMS} channels",
        f"- **Input size:** {height}×{width} per camera (the model resizes its input images)",
        f"- **Backbone:** {_backbone_text(cfg)}",
        f"- **Parameters:** {params_m:.2f} M",
    ]
    if gflops is not None:
        lines.append(
            f"- **GFLOPs:** {gflops:.2f} (one sample at the input size, one multiply-add = one flop)"
        )
    if distilled_from:
        lines.append(f"- **Distilled from:** `{distilled_from}`")
    if method:
        lines.append(f"- **Distillation method:** {method}")
    if notes:
        lines += ["", "## Provenance", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Metrics", ""]
    if metrics is None:
        lines.append("Not evaluated.")
    else:
        lines += [
            f"Measured on {eval_dataset}, with the official nuScenes detection metrics (devkit 0-1 scale; "
            "NDS and mAP: higher is better, the TP errors: lower is better):",
            "",
            "| " + " | ".join(metrics) + " |",
            "|" + " --- |" * len(metrics),
            "| " + " | ".join(f"{value:.4f}" for value in metrics.values()) + " |",
        ]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "from fd3d.hub import from_pretrained",
        "",
        'model = from_pretrained("ORG/NAME")  # from the Hub (replace with this repository\'s id)',
        'model = from_pretrained("path/to/folder")  # or a local folder holding these files',
        "predictions = model(batch)  # eval mode: per sample boxes_lidar (N, 9), scores, labels",
        "```",
        "",
        f"`{CONFIG_NAME}` holds the full fd3d config (`fd3d_config`), `{WEIGHTS_NAME}` the weights.",
        "",
    ]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _backbone_text(cfg: CfgNode) -> str:
    backbone = cfg.MODEL.BACKBONE
    depths = "-".join(str(depth) for depth in backbone.DEPTHS)
    widths = "/".join(str(width) for width in backbone.HIDDEN_SIZES)
    dcn = f", DCNv2 in stages {list(backbone.DCN_STAGES)}" if backbone.DCN_STAGES else ""
    init = f"initialised from `{backbone.PRETRAINED}`" if backbone.PRETRAINED else "trained from scratch"
    return f"ResNet ({backbone.LAYER_TYPE} blocks, depths {depths}, widths {widths}{dcn}), {init}"
