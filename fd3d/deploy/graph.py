"""One frame of a deployed detector as a plain function of tensors: what `torch.onnx` exports.

Inputs are what a car has: the six camera images at the model's input size (uint8 RGB) and their
`lidar2img`; a temporal detector (BEVFormer) also takes its own BEV of the previous frame, the motion from
the current to the previous LiDAR frame and whether a previous frame exists, and returns the new BEV, so
the temporal state lives outside the graph. Outputs are the NMS-free top-k detections of one sample in the
LiDAR frame, in fd3d's box convention (x, y, z, w, l, h, yaw, vx, vy), their scores, labels, the object
query each came from (which identifies a detection across runtimes when scores nearly tie) and its code in
the network's own units: (cx, cy, log w, log l, cz, log h, sin, cos, vx, vy) with the centre as the
sigmoid output in [0, 1] of the point-cloud range. That is what the network computes, before decoding
scales the centre by the range (about 100 m) and takes exp and atan2, which amplify float32 noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fd3d.modeling.box_coder import decode_topk, normalize_centers
from fd3d.modeling.detr_head import CENTER_DIMS

FRAME_INPUTS = ("images", "lidar2img")
STATE_INPUTS = ("prev_bev", "curr2prev_lidar", "prev_exists")
DETECTION_OUTPUTS = ("boxes_lidar", "scores", "labels", "queries", "codes")
STATE_OUTPUTS = ("bev",)


def is_temporal(detector: nn.Module) -> bool:
    """Whether the detector carries a BEV from frame to frame (it reads previous keyframes)."""
    return getattr(detector, "queue_length", 0) > 0


@dataclass
class GraphSignature:
    """Names and example tensors of a detector's inference graph."""

    input_names: list[str]
    output_names: list[str]
    bev_shape: tuple[int, ...] | None  # (1, C, H, W) of the carried BEV, None for single-frame detectors


class InferenceGraph(nn.Module):
    """detector -> forward(images, lidar2img[, prev_bev, curr2prev_lidar, prev_exists]) for batch 1."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        self.temporal = is_temporal(detector)
        self.eval()

    def forward(self, images: Tensor, lidar2img: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        batch = {"images": images, "lidar2img": lidar2img}
        if self.temporal:
            batch.update(zip(STATE_INPUTS, state, strict=True))
        elif state:
            raise ValueError(f"{type(self.detector).__name__} is single-frame; got {len(state)} state inputs")
        features = self.detector.extract_features(batch)
        outputs = self.detector.forward_head(features, batch)
        top = decode_topk(
            outputs.cls_logits[-1][0],
            outputs.box_code[-1][0],
            self.detector.max_detections,
            self.detector.post_center_range,
        )
        codes = outputs.box_code[-1][0][top["queries"]].clone()
        codes[:, CENTER_DIMS] = normalize_centers(codes[:, CENTER_DIMS], self.detector.pc_range)
        detections = (top["boxes"], top["scores"], top["labels"], top["queries"], codes)
        return (*detections, features.bev) if self.temporal else detections


def signature(detector: nn.Module, example: dict) -> tuple[GraphSignature, tuple[Tensor, ...]]:
    """The graph's names and example inputs for one batch-1 frame `example` (a collated batch)."""
    inputs = [example["images"][:1], example["lidar2img"][:1].float()]
    names, outputs = list(FRAME_INPUTS), list(DETECTION_OUTPUTS)
    bev_shape = None
    if is_temporal(detector):
        with torch.no_grad():
            frame = {k: example[k][:1] for k in (*FRAME_INPUTS, "curr2prev_lidar", "prev_exists")}
            bev = detector.extract_features(frame).bev
        if bev is None:
            raise ValueError(f"{type(detector).__name__} reads previous frames but returns no BEV to carry")
        bev_shape = tuple(bev.shape)
        inputs += [
            torch.zeros(bev_shape),
            example["curr2prev_lidar"][:1].float(),
            torch.zeros(1, dtype=torch.bool),
        ]
        names += list(STATE_INPUTS)
        outputs += list(STATE_OUTPUTS)
    return GraphSignature(names, outputs, bev_shape), tuple(inputs)
