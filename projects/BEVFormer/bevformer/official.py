"""The official BEVFormer (fundamentalvision/BEVFormer, mmcv 1.x) as an fd3d BEVFormer: config and weights.

Registered in `fd3d.official.OFFICIAL_MODEL_REGISTRY` as "BEVFormer" (the official `model.type`). What
the official model does and fd3d's BEVFormer does once configured so (checked against the official code's
own outputs in tests/official/test_official_bevformer.py; the op-by-op account is OFFICIAL_PARITY.md):
- mmdet ResNet + FPN, input normalisation and padding as for DETR3D (`fd3d.official.resnet_fpn`);
- an MLP embedding of the CAN-bus vector added to the BEV queries (MODEL.BEVFORMER.USE_CAN_BUS);
- the previous BEV rotated (nearest) about `rotate_center` by the yaw change and the previous queue's
  sampling points shifted by the ego translation (ALIGNMENT "rotate_shift", ROTATE_*, USE_SHIFT);
- temporal self-attention's values: the previous BEV and the encoder's input queries in every layer, the
  layer's own input twice without history (TSA_VALUE "input_query");
- spatial cross-attention without the BEV positional embedding (SCA_QUERY_POS False), pillar heights
  linspace(0.5, Z - 0.5, D) / Z of the range (PILLAR_HEIGHTS "half_metre_inset");
- the decoder and NMS-free head as the official DETR3D's (query_embedding split, reference points from
  the positional query, 2-block class branches, yaw converted inside the last box layer).
The temporal test protocol (CAN-bus deltas, previous BEV kept within a scene) is evaluation's: converted
configs get TEST.TEMPORAL_PROTOCOL "scene" (`fd3d.evaluation.scene_protocol`, whose `stream_frame`
`fd3d.official.parity.run_frames` also steps the official inputs with).
"""

from __future__ import annotations

import re

from fvcore.common.config import CfgNode
from torch import Tensor

from fd3d.official.convert import OFFICIAL_MODEL_REGISTRY, OfficialModel
from fd3d.official.detr_head import HEAD, map_head_entry, read_head, read_nms_free_coder
from fd3d.official.mmcv_config import OfficialConfigError
from fd3d.official.options import OptionReader
from fd3d.official.resnet_fpn import backbone_config, neck_config, rename_trunk_and_neck

LAYER_ORDER = ("self_attn", "norm", "cross_attn", "norm", "ffn", "norm")
RELU = ({"type": "ReLU", "inplace": True}, {"type": "ReLU"})
# attention options that do not change the test-mode forward (dropout, memory, initialisation)
ATTENTION_TRAINING_ONLY = ("dropout", "im2col_step", "batch_first", "norm_cfg", "init_cfg")
OFFICIAL_DEFAULT_QUEUE_LENGTH = 4  # CustomNuScenesDataset: the current frame and 3 previous ones
TRANSFORMER = f"{HEAD}.transformer"
# official parameter -> fd3d parameter, one to one
RENAMED = {
    f"{HEAD}.bev_embedding.weight": "encoder.bev_queries.weight",
    f"{HEAD}.positional_encoding.row_embed.weight": "encoder.row_embed.weight",
    f"{HEAD}.positional_encoding.col_embed.weight": "encoder.col_embed.weight",
    f"{TRANSFORMER}.level_embeds": "encoder.level_embeds",
    f"{TRANSFORMER}.cams_embeds": "encoder.cams_embeds",
    f"{TRANSFORMER}.reference_points.weight": "head.reference_points.weight",
    f"{TRANSFORMER}.reference_points.bias": "head.reference_points.bias",
}
FFN_AND_NORMS = (("ffns.0.layers.0.0.", "ffn.0."), ("ffns.0.layers.1.", "ffn.3."), ("norms.", "norms."))
# sub-module names inside an official encoder / decoder layer -> fd3d's
ENCODER_LAYER_PARTS = (
    ("attentions.0.", "tsa."),
    ("attentions.1.deformable_attention.", "sca."),
    ("attentions.1.output_proj.", "sca.output_proj."),
    *FFN_AND_NORMS,
)
DECODER_LAYER_PARTS = (
    ("attentions.0.attn.", "self_attn."),
    ("attentions.1.", "cross_attn.attention."),
    *FFN_AND_NORMS,
)


def _same_floats(options: OptionReader, key: str, expected: list[float]) -> None:
    value = options.get(key)
    if value is None or [float(v) for v in value] != expected:
        raise OfficialConfigError(
            f"{options.where}.{key} = {value!r} differs from the coder's pc_range {expected}"
        )


def _read_ffn(layer: OptionReader, dims: int) -> int:
    """The layer's FFN (`ffn_cfgs` and/or the deprecated `feedforward_channels`): its hidden width."""
    layer.require("act_cfg", RELU, RELU[0])
    layer.require("ffn_num_fcs", 2, 2)
    widths = set()
    if layer.get("feedforward_channels", None) is not None:
        widths.add(int(layer.get("feedforward_channels")))
    ffn = layer.get("ffn_cfgs", None)
    if ffn is not None:
        options = OptionReader(ffn, f"{layer.where}.ffn_cfgs")
        options.require("type", "FFN", "FFN")
        options.require("num_fcs", 2, 2)
        options.require("act_cfg", RELU, RELU[0])
        options.require("embed_dims", dims, dims)
        options.require("add_identity", True, True)
        widths.add(int(options.get("feedforward_channels")))
        options.ignore("ffn_drop", "dropout_layer", "init_cfg")
        options.done()
    if len(widths) != 1:
        raise OfficialConfigError(f"{layer.where}: feedforward_channels given {sorted(widths) or 'nowhere'}")
    return widths.pop()


def _read_layer(layer: OptionReader, layer_type: str, dims: int) -> tuple[OptionReader, OptionReader, int]:
    """A post-norm attention layer: (self-attention options, cross-attention options, FFN width)."""
    layer.require("type", layer_type)
    order = tuple(layer.get("operation_order"))
    if order != LAYER_ORDER:
        raise OfficialConfigError(
            f"{layer.where}.operation_order {order} is not supported (fd3d: {LAYER_ORDER})"
        )
    attentions = layer.get("attn_cfgs")
    if not isinstance(attentions, (list, tuple)) or len(attentions) != 2:
        raise OfficialConfigError(f"{layer.where}.attn_cfgs must list a self- and a cross-attention")
    self_attn, cross_attn = (
        OptionReader(c, f"{layer.where}.attn_cfgs[{i}]") for i, c in enumerate(attentions)
    )
    ffn_dims = _read_ffn(layer, dims)
    layer.require("norm_cfg", ({"type": "LN"},), {"type": "LN"})
    layer.ignore("ffn_dropout", "batch_first", "init_cfg")
    layer.done()
    return self_attn, cross_attn, ffn_dims


def _read_heads(options: OptionReader, num_heads: int) -> None:
    heads = int(options.get("num_heads", 8))
    if heads != num_heads:
        raise OfficialConfigError(
            f"{options.where}.num_heads = {heads}: fd3d uses one head count for every attention "
            f"(MODEL.HEAD.NUM_HEADS = {num_heads})"
        )


@OFFICIAL_MODEL_REGISTRY.register()
class BEVFormer(OfficialModel):  # named as the official model.type: the registry keys on the class name
    meta_architecture = "BEVFormer"

    def fill_config(self, official: dict, cfg: CfgNode) -> None:
        model = OptionReader(official["model"], "model")
        model.require("type", "BEVFormer")
        model.ignore("use_grid_mask", "train_cfg", "test_cfg", "pretrained")  # GridMask: training only
        # video_test_mode: the previous BEV is kept within a scene at test time (else every frame is alone)
        temporal = bool(model.get("video_test_mode", False))
        queue = int(official.get("queue_length", OFFICIAL_DEFAULT_QUEUE_LENGTH))
        cfg.MODEL.BEVFORMER.QUEUE_LENGTH = max(queue - 1, 0) if temporal else 0
        cfg.TEST.TEMPORAL_PROTOCOL = "scene"  # forward_test: one BEV carried through each scene
        stage_channels, out_indices = backbone_config(model.get("img_backbone"), cfg)
        neck_config(model.get("img_neck"), cfg, stage_channels, out_indices)
        head = model.child("pts_bbox_head")
        self._read_head(head, cfg)
        model.done()

    def _read_head(self, head: OptionReader, cfg: CfgNode) -> None:
        fd3d_head, bev = cfg.MODEL.HEAD, cfg.MODEL.BEVFORMER
        head.require("type", "BEVFormerHead")
        read_head(head, cfg)
        bev.BEV_H, bev.BEV_W = int(head.get("bev_h", 30)), int(head.get("bev_w", 30))
        pc_range = read_nms_free_coder(head.child("bbox_coder"), cfg)
        self._read_transformer(head.child("transformer"), cfg, pc_range)
        dims = fd3d_head.EMBED_DIMS
        encoding = head.child("positional_encoding")
        encoding.require("type", "LearnedPositionalEncoding")
        encoding.require("num_feats", dims // 2)
        encoding.require("row_num_embed", bev.BEV_H, 50)
        encoding.require("col_num_embed", bev.BEV_W, 50)
        encoding.ignore("init_cfg")
        encoding.done()
        head.done()

    def _read_transformer(self, transformer: OptionReader, cfg: CfgNode, pc_range: list[float]) -> None:
        bev = cfg.MODEL.BEVFORMER
        transformer.require("type", "PerceptionTransformer")
        dims = cfg.MODEL.HEAD.EMBED_DIMS = int(transformer.get("embed_dims", 256))
        # level_embeds has num_feature_levels rows, of which the forward reads one per FPN level: the official
        # tiny and small configs leave the default 4 with a single-level neck (rows 1-3 are never used)
        levels = int(transformer.get("num_feature_levels", 4))
        if levels < cfg.MODEL.FPN.NUM_OUTS:
            raise OfficialConfigError(
                f"model.pts_bbox_head.transformer.num_feature_levels = {levels} is less than the neck's "
                f"{cfg.MODEL.FPN.NUM_OUTS} levels"
            )
        bev.NUM_CAMS = int(transformer.get("num_cams", 6))
        transformer.require("use_cams_embeds", True, True)
        bev.USE_CAN_BUS = bool(transformer.get("use_can_bus", True))
        bev.CAN_BUS_NORM = bool(transformer.get("can_bus_norm", True))
        bev.ROTATE_PREV_BEV = bool(transformer.get("rotate_prev_bev", True))
        bev.USE_SHIFT = bool(transformer.get("use_shift", True))
        bev.ROTATE_CENTER = [float(v) for v in transformer.get("rotate_center", [100, 100])]
        bev.ALIGNMENT, bev.TSA_VALUE = "rotate_shift", "input_query"
        bev.SCA_QUERY_POS, bev.PILLAR_HEIGHTS = False, "half_metre_inset"
        transformer.ignore("two_stage_num_proposals", "init_cfg")
        # the decoder first: its self-attention sets the head count every attention must share
        self._read_decoder(transformer.child("decoder"), cfg)
        self._read_encoder(transformer.child("encoder"), cfg, pc_range)
        transformer.done()
        if dims % cfg.MODEL.HEAD.NUM_HEADS:
            raise OfficialConfigError(
                f"embed_dims {dims} is not divisible by num_heads {cfg.MODEL.HEAD.NUM_HEADS}"
            )

    @staticmethod
    def _read_encoder(encoder: OptionReader, cfg: CfgNode, pc_range: list[float]) -> None:
        bev, dims, heads = cfg.MODEL.BEVFORMER, cfg.MODEL.HEAD.EMBED_DIMS, cfg.MODEL.HEAD.NUM_HEADS
        encoder.require("type", "BEVFormerEncoder")
        bev.ENCODER_LAYERS = int(encoder.get("num_layers"))
        _same_floats(encoder, "pc_range", pc_range)
        bev.NUM_Z_ANCHORS = int(encoder.get("num_points_in_pillar", 4))
        encoder.require("return_intermediate", False, False)
        encoder.require("dataset_type", "nuscenes", "nuscenes")
        encoder.ignore("init_cfg")
        tsa, sca, ffn_dims = _read_layer(encoder.child("transformerlayers"), "BEVFormerLayer", dims)
        if ffn_dims != cfg.MODEL.HEAD.FFN_DIMS:
            raise OfficialConfigError(
                f"encoder feedforward_channels {ffn_dims} differ from the decoder's "
                f"{cfg.MODEL.HEAD.FFN_DIMS} (fd3d: one MODEL.HEAD.FFN_DIMS)"
            )
        tsa.require("type", "TemporalSelfAttention")
        tsa.require("embed_dims", dims, 256)
        tsa.require("num_levels", 1, 4)
        tsa.require("num_bev_queue", 2, 2)
        _read_heads(tsa, heads)
        bev.TSA_POINTS = int(tsa.get("num_points", 4))
        tsa.ignore(*ATTENTION_TRAINING_ONLY)
        tsa.done()
        sca.require("type", "SpatialCrossAttention")
        sca.require("embed_dims", dims, 256)
        sca.require("num_cams", bev.NUM_CAMS, 6)
        _same_floats(sca, "pc_range", pc_range)
        sca.ignore(*ATTENTION_TRAINING_ONLY)
        deformable = OptionReader(
            sca.get(
                "deformable_attention",
                {"type": "MSDeformableAttention3D", "embed_dims": 256, "num_levels": 4},
            ),
            f"{sca.where}.deformable_attention",
        )
        sca.done()
        deformable.require("type", "MSDeformableAttention3D")
        deformable.require("embed_dims", dims, 256)
        deformable.require("num_levels", cfg.MODEL.FPN.NUM_OUTS, 4)
        _read_heads(deformable, heads)
        bev.SCA_POINTS = int(deformable.get("num_points", 8))
        if bev.SCA_POINTS % bev.NUM_Z_ANCHORS:
            raise OfficialConfigError(
                f"{deformable.where}.num_points = {bev.SCA_POINTS} is not a multiple of num_points_in_pillar "
                f"({bev.NUM_Z_ANCHORS})"
            )
        deformable.ignore(*ATTENTION_TRAINING_ONLY)
        deformable.done()
        encoder.done()

    @staticmethod
    def _read_decoder(decoder: OptionReader, cfg: CfgNode) -> None:
        head = cfg.MODEL.HEAD
        decoder.require("type", "DetectionTransformerDecoder")
        decoder.require("return_intermediate", True)
        head.NUM_LAYERS = int(decoder.get("num_layers"))
        decoder.ignore("init_cfg")
        self_attn, cross_attn, head.FFN_DIMS = _read_layer(
            decoder.child("transformerlayers"), "DetrTransformerDecoderLayer", head.EMBED_DIMS
        )
        self_attn.require("type", "MultiheadAttention")
        self_attn.require("embed_dims", head.EMBED_DIMS)
        head.NUM_HEADS = int(self_attn.get("num_heads"))
        head.DROPOUT = float(self_attn.get("dropout", 0.0))
        self_attn.ignore("attn_drop", "proj_drop", "batch_first", "init_cfg", "dropout_layer")
        self_attn.done()
        cross_attn.require("type", "CustomMSDeformableAttention")
        cross_attn.require("embed_dims", head.EMBED_DIMS, 256)
        cross_attn.require("num_levels", 1, 4)
        _read_heads(cross_attn, head.NUM_HEADS)
        cfg.MODEL.BEVFORMER.DECODER_POINTS = int(cross_attn.get("num_points", 4))
        cross_attn.ignore(*ATTENTION_TRAINING_ONLY)
        cross_attn.done()
        decoder.done()

    def convert_weights(self, state: dict[str, Tensor], cfg: CfgNode) -> tuple[dict[str, Tensor], set[str]]:
        mapped = rename_trunk_and_neck(state, len(cfg.MODEL.BACKBONE.OUT_STAGES))
        used = {key for key in state if key.startswith(("img_backbone.", "img_neck."))}
        dims = cfg.MODEL.HEAD.EMBED_DIMS
        for key, value in state.items():
            target = RENAMED.get(key)
            if key == f"{TRANSFORMER}.level_embeds":  # (num_feature_levels, C): the rows of the used levels
                value = value[: cfg.MODEL.FPN.NUM_OUTS]
            if map_head_entry(key, value, dims, mapped):
                used.add(key)
            elif match := re.fullmatch(rf"{TRANSFORMER}\.can_bus_mlp\.(.+)", key):
                if cfg.MODEL.BEVFORMER.USE_CAN_BUS:
                    target = f"encoder.can_bus_mlp.{match[1]}"
                else:
                    used.add(key)  # built but multiplied by use_can_bus = False officially: no effect
            elif match := re.fullmatch(rf"{TRANSFORMER}\.encoder\.layers\.(\d+)\.(.+)", key):
                target = _layer_target(f"encoder.layers.{match[1]}", match[2], ENCODER_LAYER_PARTS)
            elif match := re.fullmatch(rf"{TRANSFORMER}\.decoder\.layers\.(\d+)\.(.+)", key):
                target = _layer_target(f"head.layers.{match[1]}", match[2], DECODER_LAYER_PARTS)
            if target is not None:
                mapped[target] = value
                used.add(key)
        return mapped, used


def _layer_target(prefix: str, inner: str, parts: tuple[tuple[str, str], ...]) -> str | None:
    for official, fd3d in parts:
        if inner.startswith(official):
            return f"{prefix}.{fd3d}{inner.removeprefix(official)}"
    return None
