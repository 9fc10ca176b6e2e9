"""Config keys of BEVFormer (`MODEL.BEVFORMER`); encoder width, heads and FFN follow `MODEL.HEAD`."""

from fvcore.common.config import CfgNode as CN

from fd3d.config import register_config_extension


@register_config_extension("BEVFormer")
def add_bevformer_config(cfg: CN) -> None:
    cfg.MODEL.BEVFORMER = CN()
    cfg.MODEL.BEVFORMER.BEV_H = 200
    cfg.MODEL.BEVFORMER.BEV_W = 200
    cfg.MODEL.BEVFORMER.ENCODER_LAYERS = 6
    # Heights sampled along each BEV pillar, spread evenly over the point-cloud range's z extent.
    cfg.MODEL.BEVFORMER.NUM_Z_ANCHORS = 4
    # Spatial cross-attention samples per camera level, shared out among the Z anchors.
    cfg.MODEL.BEVFORMER.SCA_POINTS = 8
    cfg.MODEL.BEVFORMER.TSA_POINTS = 4
    cfg.MODEL.BEVFORMER.DECODER_POINTS = 4
    cfg.MODEL.BEVFORMER.NUM_CAMS = 6
    # Previous frames whose BEV feeds temporal self-attention (0 = single frame).
    cfg.MODEL.BEVFORMER.QUEUE_LENGTH = 3
