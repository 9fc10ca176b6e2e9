"""mmdet's ResNet and FPN (as the official BEVFormer and DETR3D configure them) in fd3d terms.

fd3d's trunk is transformers' `ResNetBackbone` and its neck torchvision's `FeaturePyramidNetwork`;
both compute exactly what mmdet's modules compute once configured alike (mmdet `style` = transformers'
`downsample_in_bottleneck`; DCNv2 with mmcv's sigmoid mask), so only names differ. This module maps
the config sections `img_backbone` / `img_neck` onto `MODEL.BACKBONE` / `MODEL.FPN` and renames the
`img_backbone.*` / `img_neck.*` weights.
"""

from __future__ import annotations

import re

from fvcore.common.config import CfgNode
from torch import Tensor

from fd3d.official.mmcv_config import OfficialConfigError
from fd3d.official.options import OptionReader

# mmdet ResNet depth -> (blocks per stage, block type)
RESNET_DEPTHS = {
    18: ([2, 2, 2, 2], "basic"),
    34: ([3, 4, 6, 3], "basic"),
    50: ([3, 4, 6, 3], "bottleneck"),
    101: ([3, 4, 23, 3], "bottleneck"),
    152: ([3, 8, 36, 3], "bottleneck"),
}
BATCH_NORMS = ("BN", "BN2d", "SyncBN")
# options that do not change the test-mode forward: initialisation, memory, what trains
TRAINING_ONLY = ("pretrained", "init_cfg", "with_cp", "frozen_stages", "norm_eval", "zero_init_residual")


def backbone_config(section: dict, cfg: CfgNode) -> list[int]:
    """Fill MODEL.BACKBONE from `img_backbone`; returns the channels of every stage it outputs."""
    options = OptionReader(section, "model.img_backbone")
    options.require("type", "ResNet")
    depth = options.get("depth")
    if depth not in RESNET_DEPTHS:
        raise OfficialConfigError(
            f"model.img_backbone.depth = {depth!r}; mmdet ResNet depths: {sorted(RESNET_DEPTHS)}"
        )
    blocks, layer_type = RESNET_DEPTHS[depth]
    options.require("num_stages", 4, 4)
    base = int(options.get("base_channels", 64))
    options.require("in_channels", 3, 3)
    options.require("stem_channels", (None, base), None)
    options.require("deep_stem", False, False)
    options.require("avg_down", False, False)
    options.require("strides", ((1, 2, 2, 2), [1, 2, 2, 2]), (1, 2, 2, 2))
    options.require("dilations", ((1, 1, 1, 1), [1, 1, 1, 1]), (1, 1, 1, 1))
    options.require("plugins", None, None)
    options.require("conv_cfg", None, None)
    norm = options.get("norm_cfg", {"type": "BN"})
    if norm.get("type") not in BATCH_NORMS:
        raise OfficialConfigError(
            f"model.img_backbone.norm_cfg.type = {norm.get('type')!r}; fd3d: {BATCH_NORMS}"
        )
    expansion = 4 if layer_type == "bottleneck" else 1
    widths = [base * expansion * 2**i for i in range(4)]
    out_indices = [int(i) for i in options.get("out_indices", (0, 1, 2, 3))]
    dcn = options.get("dcn", None)
    with_dcn = [bool(flag) for flag in options.get("stage_with_dcn", (False,) * 4)]
    if dcn is not None:
        dcn_options = OptionReader(dcn, "model.img_backbone.dcn")
        dcn_options.require("type", "DCNv2")
        dcn_options.require("deform_groups", 1, 1)
        dcn_options.require("fallback_on_stride", False, False)
        dcn_options.done()
    backbone = cfg.MODEL.BACKBONE
    backbone.DEPTHS, backbone.LAYER_TYPE = list(blocks), layer_type
    backbone.EMBEDDING_SIZE, backbone.HIDDEN_SIZES = base, widths
    backbone.STYLE = options.get("style", "pytorch")
    if backbone.STYLE not in ("pytorch", "caffe"):
        raise OfficialConfigError(
            f"model.img_backbone.style = {backbone.STYLE!r}; mmdet: 'pytorch' or 'caffe'"
        )
    backbone.DCN_STAGES = [s + 1 for s, flag in enumerate(with_dcn) if flag] if dcn is not None else []
    backbone.DCN_MASK_SCALE = 1.0  # mmcv's ModulatedDeformConv2dPack: mask = sigmoid
    backbone.PRETRAINED = ""
    backbone.FROZEN_STAGES = int(section.get("frozen_stages", -1))
    backbone.NORM_EVAL = bool(section.get("norm_eval", False))
    options.ignore(*TRAINING_ONLY)
    options.done()
    return [widths[i] for i in out_indices], out_indices


def neck_config(section: dict, cfg: CfgNode, stage_channels: list[int], out_indices: list[int]) -> None:
    """Fill MODEL.FPN and MODEL.BACKBONE.OUT_STAGES from `img_neck`.

    mmdet's FPN reads backbone outputs from `start_level` on; fd3d's trunk returns just those stages.
    """
    options = OptionReader(section, "model.img_neck")
    options.require("type", "FPN")
    in_channels = [int(c) for c in options.get("in_channels")]
    if in_channels != stage_channels:
        raise OfficialConfigError(
            f"model.img_neck.in_channels {in_channels} differ from the backbone's outputs {stage_channels}"
        )
    start = int(options.get("start_level", 0))
    options.require("end_level", -1, -1)
    used = out_indices[start:]
    num_outs = int(options.get("num_outs"))
    extra = num_outs - len(used)
    if extra > 0:
        options.require("add_extra_convs", ("on_output", True))
        if extra > 1:
            options.require("relu_before_extra_convs", True)
    options.ignore("add_extra_convs", "relu_before_extra_convs", "init_cfg")
    options.require("no_norm_on_lateral", False, False)
    options.require("conv_cfg", None, None)
    options.require("norm_cfg", None, None)
    options.require("act_cfg", None, None)
    options.require("upsample_cfg", ({"mode": "nearest"},), {"mode": "nearest"})
    cfg.MODEL.BACKBONE.OUT_STAGES = [i + 1 for i in used]
    cfg.MODEL.FPN.OUT_CHANNELS = int(options.get("out_channels"))
    cfg.MODEL.FPN.NUM_OUTS = num_outs
    options.done()


def rename_backbone(key: str) -> str | None:
    """`img_backbone.*` -> fd3d's `backbone.body.*` (transformers ResNet names); None for other keys."""
    match = re.fullmatch(r"img_backbone\.(.+)", key)
    if match is None:
        return None
    rest = match[1]
    stem = re.fullmatch(r"(conv1|bn1)\.(.+)", rest)
    if stem:
        part = "convolution" if stem[1] == "conv1" else "normalization"
        return f"backbone.body.embedder.embedder.{part}.{stem[2]}"
    block = re.fullmatch(r"layer(\d)\.(\d+)\.(.+)", rest)
    if block is None:
        return None
    stage, index, inner = int(block[1]) - 1, block[2], block[3]
    prefix = f"backbone.body.encoder.stages.{stage}.layers.{index}"
    conv = re.fullmatch(r"(conv|bn)(\d)\.(.+)", inner)
    if conv:
        part = "convolution" if conv[1] == "conv" else "normalization"  # DCNv2: conv2.conv_offset.* too
        return f"{prefix}.layer.{int(conv[2]) - 1}.{part}.{conv[3]}"
    shortcut = re.fullmatch(r"downsample\.([01])\.(.+)", inner)
    if shortcut:
        part = "convolution" if shortcut[1] == "0" else "normalization"
        return f"{prefix}.shortcut.{part}.{shortcut[2]}"
    return None


def rename_neck(key: str, num_inputs: int) -> str | None:
    """`img_neck.*` -> fd3d's `neck.fpn.*`: laterals, output convs, then the extra (stride-2) convs."""
    match = re.fullmatch(r"img_neck\.(lateral_convs|fpn_convs)\.(\d+)\.conv\.(weight|bias)", key)
    if match is None:
        return None
    kind, index, tensor = match[1], int(match[2]), match[3]
    if kind == "lateral_convs":
        return f"neck.fpn.inner_blocks.{index}.0.{tensor}"
    if index < num_inputs:
        return f"neck.fpn.layer_blocks.{index}.0.{tensor}"
    return f"neck.fpn.extra_blocks.convs.{index - num_inputs}.{tensor}"


def rename_trunk_and_neck(state: dict[str, Tensor], num_inputs: int) -> dict[str, Tensor]:
    """The renamed `img_backbone.*` and `img_neck.*` entries of an official state dict; `num_inputs` is the
    number of backbone stages the FPN reads (len(MODEL.BACKBONE.OUT_STAGES))."""
    renamed = {}
    for key, value in state.items():
        target = rename_backbone(key) or rename_neck(key, num_inputs)
        if target is not None:
            renamed[target] = value
    return renamed
