"""ResNet image trunk (Hugging Face ``ResNetBackbone``) with DCNv2, frozen stages and frozen BatchNorm.

The camera detectors (DETR3D, BEVFormer) encode each camera image with a ResNet whose early stages are
frozen and whose BatchNorm statistics are never updated: per-GPU batches of 6 camera images are too
small for reliable batch statistics. The paper's teachers use R101-DCN (deformable convs in stages 3 and
4). The trunk is the ``transformers`` implementation so ImageNet weights load with ``from_pretrained``;
this module only adds what the detectors need on top of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import deform_conv2d
from transformers import ResNetBackbone, ResNetConfig

logger = logging.getLogger(__name__)

# ImageNet statistics in 0..255 RGB units, as the torchvision / mmdet ResNet checkpoints expect.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

LAYER_TYPES = ("basic", "bottleneck")
RESNET_STYLES = ("pytorch", "caffe")


def normalize_images(
    images_uint8: Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """(..., 3, H, W) uint8 RGB -> float32 ``(x - mean) / std``.

    Only uint8 is accepted so that normalising twice (a silent accuracy killer) fails loudly.
    """
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (0..255 RGB), got dtype {images_uint8.dtype}")
    if images_uint8.dim() < 3 or images_uint8.shape[-3] != 3:
        raise ValueError(f"expected images (..., 3, H, W), got {tuple(images_uint8.shape)}")
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images_uint8.device).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images_uint8.device).view(3, 1, 1)
    return (images_uint8.float() - mean_t) / std_t


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 (Zhu et al. 2019) on ``torchvision.ops.deform_conv2d``, no custom CUDA op needed.

    A zero-initialised conv predicts per-position offsets and a modulation mask. The mask is
    ``mask_scale * sigmoid(m)``. The default 2 differs from mmcv's ``sigmoid(m)`` on purpose: with zero
    init the mask is exactly 1, so a conv converted with :meth:`from_conv` reproduces the plain conv at
    init and pretrained weights keep their meaning (mmcv's variant halves the response at init); the
    mask range is then (0, 2). ``mask_scale=1`` is mmcv's, for official checkpoints.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = False,
        mask_scale: float = 2.0,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.deform_groups = deform_groups
        self.mask_scale = float(mask_scale)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        kernel_points = self.kernel_size[0] * self.kernel_size[1]
        # Same geometry as the main conv so offsets line up with output positions.
        self.conv_offset = nn.Conv2d(
            in_channels,
            deform_groups * 3 * kernel_points,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    @classmethod
    def from_conv(
        cls, conv: nn.Conv2d, deform_groups: int = 1, mask_scale: float = 2.0
    ) -> ModulatedDeformConv2d:
        """A DCNv2 with ``conv``'s geometry and a copy of its weights (equal output at init)."""
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(
                f"only numeric zero padding is supported, got {conv.padding!r}/{conv.padding_mode}"
            )
        dcn = cls(
            conv.in_channels,
            conv.out_channels,
            kernel_size=conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            deform_groups=deform_groups,
            bias=conv.bias is not None,
            mask_scale=mask_scale,
        )
        dcn.to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            dcn.weight.copy_(conv.weight)
            if conv.bias is not None:
                dcn.bias.copy_(conv.bias)
        return dcn

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) -> (N, C_out, H', W')."""
        # conv_offset channels: (dy, dx) pairs per kernel point and deform group, then the mask logits
        # (the layout of mmcv's chunk-and-cat, so its DCNv2 conv_offset weights would load unchanged).
        offset_mask = self.conv_offset(x)
        num_offsets = 2 * self.deform_groups * self.kernel_size[0] * self.kernel_size[1]
        offset, mask_logits = offset_mask[:, :num_offsets], offset_mask[:, num_offsets:]
        mask = self.mask_scale * torch.sigmoid(mask_logits)
        return deform_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )


def _stage_strides(config: ResNetConfig) -> list[int]:
    """Output stride of each stage: the stem is /4 (7x7 s2 conv + s2 max-pool), each later stage /2."""
    stride = 4 * (2 if config.downsample_in_first_stage else 1)
    strides = [stride]
    for _ in config.depths[1:]:
        stride *= 2
        strides.append(stride)
    return strides


class ResNetTrunk(nn.Module):
    """Wraps a ``transformers.ResNetBackbone``: list-of-maps output, DCNv2, frozen stages, norm_eval.

    ``forward`` returns one map per out stage, low stride first. ``train()`` keeps frozen parts and (with
    ``norm_eval``) every BatchNorm in eval mode, as mmdet's ResNet does for the BEVFormer/DETR3D originals.
    """

    def __init__(
        self,
        body: ResNetBackbone,
        dcn_stages: Sequence[int] = (),
        frozen_stages: int = 1,
        norm_eval: bool = True,
        dcn_mask_scale: float = 2.0,
    ) -> None:
        super().__init__()
        num_stages = len(body.config.depths)
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f"frozen_stages must be in [-1, {num_stages}], got {frozen_stages}")
        bad_dcn = [s for s in dcn_stages if not 1 <= s <= num_stages]
        if bad_dcn:
            raise ValueError(f"dcn_stages must be in 1..{num_stages}, got {list(dcn_stages)}")
        self.body = body
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.dcn_stages = tuple(sorted(set(dcn_stages)))
        stage_strides = _stage_strides(body.config)
        out_stages = [int(name.removeprefix("stage")) for name in body.out_features]
        self.out_channels: list[int] = [body.config.hidden_sizes[s - 1] for s in out_stages]
        self.strides: list[int] = [stage_strides[s - 1] for s in out_stages]
        for stage in self.dcn_stages:
            _convert_stage_to_dcn(body.encoder.stages[stage - 1], dcn_mask_scale)
        self._freeze()
        self.train(self.training)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.body.embedder, *self.body.encoder.stages[: self.frozen_stages]]

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            for param in module.parameters():
                param.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNetTrunk:
        """Like ``nn.Module.train`` but frozen parts, and all BatchNorm if ``norm_eval``, stay in eval."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        if mode and self.norm_eval:
            for module in self.modules():
                # _BatchNorm also covers SyncBatchNorm, should a launcher convert the model.
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, images: Tensor) -> list[Tensor]:
        """images: (N, 3, H, W) normalised float -> [(N, C_i, ceil(H / s_i), ceil(W / s_i))]."""
        return list(self.body(pixel_values=images, return_dict=True).feature_maps)


def _convert_stage_to_dcn(stage: nn.Module, mask_scale: float) -> None:
    """Swap every 3x3 conv of the residual branches in ``stage`` for DCNv2 (shortcuts are 1x1, untouched).

    For bottleneck layers that is the middle conv, as mmdet's DCN ResNet; basic layers get both convs.
    """
    for layer in stage.layers:
        for conv_layer in layer.layer:
            conv = conv_layer.convolution
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3):
                conv_layer.convolution = ModulatedDeformConv2d.from_conv(conv, mask_scale=mask_scale)


def _check_matches(config: ResNetConfig, expected: dict[str, object], source: str) -> None:
    for key, want in expected.items():
        got = getattr(config, key)
        if isinstance(want, (list, tuple)):
            got, want = list(got), list(want)
        if got != want:
            raise ValueError(
                f"pretrained weights {source!r} have {key}={got}, but the backbone config asks for "
                f"{key}={want}; make the config match the checkpoint"
            )


def _load_pretrained(pretrained: str, out_features: list[str]) -> ResNetBackbone:
    try:
        body = ResNetBackbone.from_pretrained(pretrained, out_features=out_features, dtype=torch.float32)
    except (OSError, ValueError) as err:
        where = "local folder" if os.path.isdir(pretrained) else "not a local folder, so tried as a Hub id"
        cause = str(err).strip().rstrip(".")
        raise RuntimeError(
            f"could not load ResNet weights from {pretrained!r} ({where}): {type(err).__name__}: {cause}. "
            'Set the backbone\'s pretrained weights to "" for random initialisation, or point it to a '
            "local folder holding config.json + weights (model.safetensors)."
        ) from err
    return body


def build_resnet_backbone(
    depths: Sequence[int] = (3, 4, 6, 3),
    hidden_sizes: Sequence[int] = (256, 512, 1024, 2048),
    embedding_size: int = 64,
    layer_type: str = "bottleneck",
    out_stages: Sequence[int] = (2, 3, 4),
    pretrained: str = "",
    dcn_stages: Sequence[int] = (),
    frozen_stages: int = 1,
    norm_eval: bool = True,
    style: str = "pytorch",
    dcn_mask_scale: float = 2.0,
) -> ResNetTrunk:
    """Build the trunk, randomly initialised (``pretrained=""``) or from a Hub id / local folder.

    ``out_stages`` are 1-based stage numbers (strides 4, 8, 16, 32 for stages 1..4). ``style`` is mmdet's:
    "pytorch" strides a bottleneck in its 3x3 conv, "caffe" in its first 1x1 (transformers'
    ``downsample_in_bottleneck``). A failed load raises
    rather than falling back to random weights: a detector trained from scratch by accident looks like a
    distillation failure weeks later.
    """
    if len(depths) != len(hidden_sizes):
        raise ValueError(f"depths {list(depths)} and hidden_sizes {list(hidden_sizes)} differ in length")
    if style not in RESNET_STYLES:
        raise ValueError(f"style must be one of {RESNET_STYLES}, got {style!r}")
    if layer_type not in LAYER_TYPES:
        raise ValueError(f"layer_type must be one of {LAYER_TYPES}, got {layer_type!r}")
    out_stages = list(out_stages)
    if (
        not out_stages
        or any(not 1 <= s <= len(depths) for s in out_stages)
        or out_stages != sorted(set(out_stages))
    ):
        raise ValueError(f"out_stages must be strictly increasing in 1..{len(depths)}, got {out_stages}")
    out_features = [f"stage{s}" for s in out_stages]
    expected = {
        "depths": list(depths),
        "hidden_sizes": list(hidden_sizes),
        "embedding_size": embedding_size,
        "layer_type": layer_type,
        "downsample_in_bottleneck": style == "caffe",
    }
    if pretrained:
        body = _load_pretrained(pretrained, out_features)
        _check_matches(body.config, expected, pretrained)
        logger.info("ResNet trunk: loaded pretrained weights from %r", pretrained)
    else:
        body = ResNetBackbone(ResNetConfig(out_features=out_features, **expected))
        logger.info("ResNet trunk randomly initialised (no ImageNet weights): pretrained is ''")
    return ResNetTrunk(
        body,
        dcn_stages=dcn_stages,
        frozen_stages=frozen_stages,
        norm_eval=norm_eval,
        dcn_mask_scale=dcn_mask_scale,
    )
