"""One frame of a deployed detector as a plain function of tensors: what `torch.onnx` exports.

Inputs are what a car has: the six camera images at the model's input size (uint8 RGB) and their
`lidar2img`; a temporal detector (BEVFormer) also takes its own BEV of the previous frame, the motion from
the current to the previous LiDAR frame and whether a previous frame exists, and returns the new BEV, so
the temporal state lives outside the graph. A model that reads the CAN bus (the official architectures:
BEVFormer-Tiny/Small/Base) has the deployed signature of the TensorRT ports instead:
`(images, lidar2img, can_bus, prev_bev, use_prev_bev)`, `can_bus` the 18-vector with the position and
yaw changes since the previous frame that the host forms (`fd3d.data.can_bus.host_can_bus`), the
rotate-and-shift alignment of the previous BEV inside the graph.

Outputs are the NMS-free top-k detections of one sample in the LiDAR frame, in fd3d's box convention
(x, y, z, w, l, h, yaw, vx, vy), their scores, labels, the object query each came from (which identifies
a detection across runtimes when scores nearly tie) and its code in the network's own units:
(cx, cy, log w, log l, cz, log h, sin, cos, vx, vy) with the centre as the sigmoid output in [0, 1] of
the point-cloud range. That is what the network computes, before decoding scales the centre by the range
(about 100 m) and takes exp and atan2, which amplify float32 noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fd3d.data.can_bus import CAN_BUS_SIZE
from fd3d.modeling.box_coder import decode_topk, normalize_centers
from fd3d.modeling.detr_head import CENTER_DIMS

FRAME_INPUTS = ("images", "lidar2img")
STATE_INPUTS = ("prev_bev", "curr2prev_lidar", "prev_exists")
# the de facto deployed signature of CAN-bus BEVFormers, after the frame inputs
CAN_BUS_INPUTS = ("can_bus", "prev_bev", "use_prev_bev")
# graph input -> the detector's batch key, where they differ
BATCH_KEYS = {"can_bus": "relative_can_bus", "use_prev_bev": "prev_exists"}
DETECTION_OUTPUTS = ("boxes_lidar", "scores", "labels", "queries", "codes")
STATE_OUTPUTS = ("bev",)
# how many hit BEV cells the frame's rig has beyond what the graph gathers (a detector with
# `size_export_slots`): 0, or the frame's detections are not the model's (`fd3d.deploy.onnx_export.stream`)
CHECK_OUTPUTS = ("hits_dropped",)


def has_export_slots(detector: nn.Module) -> bool:
    return callable(getattr(detector, "size_export_slots", None))


def is_temporal(detector: nn.Module) -> bool:
    """Whether the detector carries a BEV from frame to frame (it reads previous keyframes)."""
    return getattr(detector, "queue_length", 0) > 0


def reads_can_bus(detector: nn.Module) -> bool:
    return bool(getattr(detector, "needs_can_bus", False))


def state_inputs(detector: nn.Module) -> tuple[str, ...]:
    """The graph's inputs after FRAME_INPUTS: CAN_BUS_INPUTS for a CAN-bus model (`curr2prev_lidar` added
    where it also warps the history by the LiDAR motion), STATE_INPUTS for fd3d's temporal models."""
    temporal = is_temporal(detector)
    if reads_can_bus(detector):
        names = CAN_BUS_INPUTS if temporal else CAN_BUS_INPUTS[:1]
        return (
            (*names, "curr2prev_lidar") if temporal and getattr(detector, "warps_history", False) else names
        )
    return STATE_INPUTS if temporal else ()


@dataclass
class GraphSignature:
    """Names and example tensors of a detector's inference graph."""

    input_names: list[str]
    output_names: list[str]
    bev_shape: tuple[int, ...] | None  # (1, C, H, W) of the carried BEV, None for single-frame detectors


class InferenceGraph(nn.Module):
    """detector -> forward(images, lidar2img, *state_inputs(detector)) for batch 1."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        self.temporal = is_temporal(detector)
        self.state_names = state_inputs(detector)
        self.eval()

    def forward(self, images: Tensor, lidar2img: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        batch = {"images": images, "lidar2img": lidar2img}
        if len(state) != len(self.state_names):
            raise ValueError(
                f"{type(self.detector).__name__} takes {list(self.state_names)} after the frame inputs; "
                f"got {len(state)} tensors"
            )
        batch.update(
            (BATCH_KEYS.get(name, name), value) for name, value in zip(self.state_names, state, strict=True)
        )
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
        outputs = [top["boxes"], top["scores"], top["labels"], top["queries"], codes]
        if self.temporal:
            outputs.append(features.bev)
        if has_export_slots(self.detector):
            outputs.append(self.detector.hits_dropped())
        return tuple(outputs)


def signature(detector: nn.Module, example: dict) -> tuple[GraphSignature, tuple[Tensor, ...]]:
    """The graph's names and example inputs for one batch-1 frame `example` (a collated batch)."""
    frame = {"images": example["images"][:1], "lidar2img": example["lidar2img"][:1].float()}
    names, outputs = [*FRAME_INPUTS, *state_inputs(detector)], list(DETECTION_OUTPUTS)
    values = {
        "curr2prev_lidar": example["curr2prev_lidar"][:1].float(),
        "prev_exists": torch.zeros(1, dtype=torch.bool),
        "use_prev_bev": torch.zeros(1, dtype=torch.bool),
        "can_bus": torch.zeros(1, CAN_BUS_SIZE),
    }
    bev_shape = None
    if is_temporal(detector):
        with torch.no_grad():
            state = {
                "curr2prev_lidar": "curr2prev_lidar",
                "prev_exists": "prev_exists",
                "relative_can_bus": "can_bus",
            }
            batch = {**frame, **{key: values[name] for key, name in state.items()}}
            bev = detector.extract_features(batch).bev
        if bev is None:
            raise ValueError(f"{type(detector).__name__} reads previous frames but returns no BEV to carry")
        bev_shape = tuple(bev.shape)
        values["prev_bev"] = torch.zeros(bev_shape)
        outputs += list(STATE_OUTPUTS)
    if has_export_slots(detector):
        outputs += list(CHECK_OUTPUTS)
    inputs = [frame["images"], frame["lidar2img"], *(values[name] for name in names[len(FRAME_INPUTS) :])]
    return GraphSignature(names, outputs, bev_shape), tuple(inputs)
