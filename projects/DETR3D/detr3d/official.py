"""The official DETR3D (WangYueFt/detr3d, mmcv 1.x) as an fd3d DETR3D: config and weight mapping.

Registered in `fd3d.official.OFFICIAL_MODEL_REGISTRY` as "Detr3D" (the official `model.type`). What the
official model does and fd3d's DETR3D does once configured so (checked against the official code's own
outputs in tests/projects/test_official_detr3d.py):
- mmdet ResNet (`style`, `base_channels`, DCNv2 with a sigmoid mask) + FPN from `start_level` with
  extra stride-2 convs on the output: `fd3d.official.resnet_fpn`;
- BGR input, caffe mean, std 1 (`img_norm_cfg`), zero padding to 32 with projected pixels divided by
  the padded size (INPUT.FORMAT, INPUT.SIZE_DIVISIBILITY);
- one `query_embedding` (Q, 2C) whose first half is the positional query and second the content;
  first-layer reference points sigmoid(Linear(query_pos)) (MODEL.HEAD.REFERENCE_POINTS "query_pos");
- class branches of `num_reg_fcs` Linear-LayerNorm-ReLU blocks (MODEL.HEAD.CLS_HIDDEN_LAYERS);
- box yaw in mmdet3d 0.17's convention, converted inside the last box layer (`yaw_code_to_nuscenes`).
"""

from __future__ import annotations

import re

from fvcore.common.config import CfgNode
from torch import Tensor

from fd3d.official.convert import OFFICIAL_MODEL_REGISTRY, OfficialModel
from fd3d.official.detr_head import map_head_entry, read_head, read_nms_free_coder
from fd3d.official.mmcv_config import OfficialConfigError
from fd3d.official.options import OptionReader
from fd3d.official.resnet_fpn import backbone_config, neck_config, rename_trunk_and_neck

DECODER_ORDER = ("self_attn", "norm", "cross_attn", "norm", "ffn", "norm")
LAYER_PREFIX = "pts_bbox_head.transformer.decoder.layers"
# official decoder-layer sub-module names -> fd3d's DecoderLayer names
LAYER_PARTS = (
    ("attentions.0.attn.", "self_attn."),
    ("attentions.1.", "cross_attn."),
    ("ffns.0.layers.0.0.", "ffn.0."),
    ("ffns.0.layers.1.", "ffn.3."),
    ("norms.", "norms."),
)


def _read_decoder_layer(layer: OptionReader, head: CfgNode, pc_range: list[float], num_levels: int) -> int:
    """Check one `transformerlayers` dict; returns the number of cameras its cross-attention weighs."""
    layer.require("type", "DetrTransformerDecoderLayer")
    order = tuple(layer.get("operation_order"))
    if order != DECODER_ORDER:
        raise OfficialConfigError(
            f"{layer.where}.operation_order {order} is not supported (fd3d: {DECODER_ORDER})"
        )
    self_attn, cross_attn = (
        OptionReader(c, f"{layer.where}.attn_cfgs[{i}]") for i, c in enumerate(layer.get("attn_cfgs"))
    )
    self_attn.require("type", "MultiheadAttention")
    head.EMBED_DIMS, head.NUM_HEADS = int(self_attn.get("embed_dims")), int(self_attn.get("num_heads"))
    head.DROPOUT = float(self_attn.get("dropout", 0.0))
    self_attn.ignore("attn_drop", "proj_drop", "batch_first", "init_cfg", "dropout_layer")
    self_attn.done()
    cross_attn.require("type", "Detr3DCrossAtten")
    cross_attn.require("num_points", 1, 1)
    cross_attn.require("num_levels", num_levels, 4)
    cross_attn.require("embed_dims", head.EMBED_DIMS, 256)
    cross_attn.require("pc_range", (pc_range,), None)
    num_cams = int(cross_attn.get("num_cams", 6))
    cross_attn.ignore("dropout", "init_cfg", "im2col_step", "batch_first", "norm_cfg")
    cross_attn.done()
    ffn = layer.get("ffn_cfgs", None)
    feedforward = int(layer.get("feedforward_channels", 0) or (ffn or {}).get("feedforward_channels", 0))
    if ffn is not None:
        ffn_options = OptionReader(ffn, f"{layer.where}.ffn_cfgs")
        ffn_options.require("type", "FFN", "FFN")
        ffn_options.require("num_fcs", 2, 2)
        ffn_options.require(
            "act_cfg", ({"type": "ReLU", "inplace": True}, {"type": "ReLU"}), {"type": "ReLU"}
        )
        ffn_options.require("embed_dims", head.EMBED_DIMS, head.EMBED_DIMS)
        feedforward = int(ffn_options.get("feedforward_channels"))
        ffn_options.ignore("ffn_drop", "dropout_layer", "add_identity", "init_cfg")
        ffn_options.done()
    head.FFN_DIMS = feedforward
    layer.ignore("ffn_dropout", "feedforward_channels", "batch_first", "init_cfg", "norm_cfg")
    layer.require("norm_cfg", ({"type": "LN"},), {"type": "LN"})
    layer.done()
    return num_cams


@OFFICIAL_MODEL_REGISTRY.register()
class Detr3D(OfficialModel):  # named as the official model.type: the registry keys on the class name
    meta_architecture = "DETR3D"

    def fill_config(self, official: dict, cfg: CfgNode) -> None:
        model = OptionReader(official["model"], "model")
        model.require("type", "Detr3D")
        model.ignore("use_grid_mask", "train_cfg", "test_cfg", "pretrained")  # GridMask: training only
        stage_channels, out_indices = backbone_config(model.get("img_backbone"), cfg)
        neck_config(model.get("img_neck"), cfg, stage_channels, out_indices)
        head = model.child("pts_bbox_head")
        head.require("type", "Detr3DHead")
        read_head(head, cfg)
        head.ignore("positional_encoding")  # built by the official head but never used in its forward
        fd3d_head = cfg.MODEL.HEAD
        pc_range = read_nms_free_coder(head.child("bbox_coder"), cfg)
        transformer = head.child("transformer")
        transformer.require("type", "Detr3DTransformer")
        transformer.ignore("init_cfg", "num_feature_levels", "num_cams", "two_stage_num_proposals")
        decoder = transformer.child("decoder")
        decoder.require("type", "Detr3DTransformerDecoder")
        decoder.require("return_intermediate", True)
        fd3d_head.NUM_LAYERS = int(decoder.get("num_layers"))
        layer = decoder.child("transformerlayers")
        cfg.MODEL.DETR3D.NUM_CAMS = _read_decoder_layer(layer, fd3d_head, pc_range, cfg.MODEL.FPN.NUM_OUTS)
        decoder.ignore("init_cfg")
        decoder.done()
        transformer.done()
        head.done()
        model.done()

    def convert_weights(self, state: dict[str, Tensor], cfg: CfgNode) -> tuple[dict[str, Tensor], set[str]]:
        mapped = rename_trunk_and_neck(state, len(cfg.MODEL.BACKBONE.OUT_STAGES))
        used = {key for key in state if key.startswith(("img_backbone.", "img_neck."))}
        for key, value in state.items():
            target = None
            if map_head_entry(key, value, cfg.MODEL.HEAD.EMBED_DIMS, mapped):
                used.add(key)
            elif match := re.fullmatch(r"pts_bbox_head\.transformer\.reference_points\.(weight|bias)", key):
                target = f"head.reference_points.{match[1]}"
            elif match := re.fullmatch(rf"{LAYER_PREFIX}\.(\d+)\.(.+)", key):
                for official, fd3d in LAYER_PARTS:
                    if match[2].startswith(official):
                        target = f"head.layers.{match[1]}.{fd3d}{match[2].removeprefix(official)}"
                        break
            if target is not None:
                mapped[target] = value
                used.add(key)
        return mapped, used
