"""Model size and cost: fvcore FLOP counts (one multiply-add = one flop) and inference speed.

fvcore traces the model with TorchScript and counts known operators. Two operators our detectors use
are not in its table, so we add handles: torchvision's deformable convolution (counted like the dense
convolution it generalises, as mmcv's counter does; the bilinear gathering is not counted) and
scaled-dot-product attention (QKᵀ and AV products). Anything else fvcore skips is reported, never
silently dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from math import prod

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import Tensor, nn

from fd3d.data.can_bus import CAN_BUS_SIZE
from fd3d.data.example_batch import example_batch
from fd3d.modeling.evaluating import evaluating

# Elementwise and bookkeeping ops whose cost is negligible next to convolutions and matmuls.
IGNORED_OPS = (
    "aten::add",
    "aten::add_",
    "aten::sub",
    "aten::mul",
    "aten::mul_",
    "aten::div",
    "aten::div_",
    "aten::sigmoid",
    "aten::softmax",
    "aten::relu",
    "aten::relu_",
    "aten::exp",
    "aten::log",
    "aten::atan2",
    "aten::sin",
    "aten::cos",
    "aten::max_pool2d",
    "aten::clamp",
    "aten::clamp_min",
    "aten::nan_to_num",
    "aten::rsub",
    "aten::gt",
    "aten::lt",
    "aten::ge",
    "aten::le",
    "aten::__and__",
    "aten::mean",
    "aten::sum",
    "aten::topk",
    "aten::remainder",
    "aten::floor_divide",
    "aten::scatter_add_",
    "aten::where",
    "aten::upsample_bilinear2d",
    "aten::_upsample_bilinear2d_aa",
    "aten::neg",
    "aten::any",
    "aten::argsort",
    "aten::sort",
    "aten::gather",
    "aten::masked_fill",
    "aten::linalg_vector_norm",
    "aten::fill_",
    "aten::ones_like",
    "aten::zeros_like",
    "aten::new_zeros",
    "aten::ne",
    "aten::eq",
    "aten::log_",
    "aten::sqrt",
    "aten::pow",
    "aten::abs",
    "aten::reciprocal",
    "aten::unflatten",
    "aten::all",
    "aten::flip",
    "aten::resolve_conj",
    "aten::resolve_neg",
)


def deform_conv2d_flop(inputs: list, outputs: list) -> int:
    """Multiply-adds of the dense convolution at the same output size: out · C_in/groups · kh · kw."""
    weight_shape = get_shape(inputs[1])
    return prod(get_shape(outputs[0])) * prod(weight_shape[1:])


def scaled_dot_product_attention_flop(inputs: list, outputs: list) -> int:
    """QKᵀ and A·V: 2 · batch · heads · L · S · E multiply-adds."""
    query_shape, key_shape = get_shape(inputs[0]), get_shape(inputs[1])
    return 2 * prod(query_shape) * key_shape[-2]


@dataclass
class FlopReport:
    gflops: float
    params_m: float
    by_module: dict[str, float]  # GFLOPs of each top-level child of the detector
    by_operator: dict[str, float]  # GFLOPs per counted operator (conv, linear, grid_sampler, deform_conv2d…)
    skipped_ops: dict[str, int] = field(default_factory=dict)  # ops fvcore could not count, by call count


class _HeadOutputsOf(nn.Module):
    """Tensor-in, tensor-out view of a detector for tracing: images + geometry -> logits, boxes."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: Tensor, lidar2img: Tensor) -> tuple[Tensor, Tensor]:
        batch_size = images.shape[0]
        batch = {
            "images": images,
            "lidar2img": lidar2img,
            "curr2prev_lidar": torch.eye(4).expand(batch_size, 4, 4),
            "prev_exists": torch.zeros(batch_size, dtype=torch.bool),
            # a CAN-bus model's input (official architectures; unread by the others): no motion
            "relative_can_bus": torch.zeros(batch_size, CAN_BUS_SIZE),
        }
        outputs = self.detector.forward_head(self.detector.extract_features(batch), batch)
        return outputs.cls_logits, outputs.box_code


def count_flops(detector: nn.Module, image_size: tuple[int, int]) -> FlopReport:
    """FLOPs of one inference on one sample of 6 cameras at `image_size` (H, W), the rig's geometry.

    A temporal detector is counted for one frame: its history enters as a cached previous BEV at test
    time, so re-encoding the queue is not part of a frame's cost.
    """
    batch = example_batch(image_size)
    wrapped = _HeadOutputsOf(detector)
    analysis = FlopCountAnalysis(wrapped, (batch["images"], batch["lidar2img"]))
    analysis.set_op_handle("torchvision::deform_conv2d", deform_conv2d_flop)
    analysis.set_op_handle("aten::scaled_dot_product_attention", scaled_dot_product_attention_flop)
    analysis.set_op_handle(**{op: None for op in IGNORED_OPS})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with evaluating(detector):  # the trace runs here, on the first query
        total = analysis.total()
        per_module = analysis.by_module()
        per_operator = analysis.by_operator()
    by_module = {name: per_module.get(f"detector.{name}", 0) / 1e9 for name, _ in detector.named_children()}
    params = sum(p.numel() for p in detector.parameters())
    return FlopReport(
        gflops=total / 1e9,
        params_m=params / 1e6,
        by_module={name: value for name, value in by_module.items() if value > 0},
        by_operator={name: value / 1e9 for name, value in per_operator.items() if value > 0},
        skipped_ops=dict(Counter(analysis.unsupported_ops())),
    )


def inference_fps(
    detector: nn.Module,
    image_size: tuple[int, int],
    iterations: int = 5,
    warmup: int = 1,
    device: str = "cpu",
) -> float:
    """Frames (6-camera samples) per second of `detector` in eval mode, batch 1, after `warmup` runs.

    The detector is moved to `device` (and stays there); its train/eval mode is restored afterwards."""
    detector = detector.to(device)
    batch = {
        key: value.to(device) if isinstance(value, Tensor) else value
        for key, value in example_batch(image_size).items()
    }
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with evaluating(detector):
        for _ in range(warmup):
            detector(batch)
        synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            detector(batch)
        synchronize()
    return iterations / (time.perf_counter() - start)
