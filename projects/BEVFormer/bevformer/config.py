"""Config keys of BEVFormer (`MODEL.BEVFORMER`); encoder width, heads and FFN follow `MODEL.HEAD`.

The defaults are fd3d's BEVFormer. The official implementation (fundamentalvision/BEVFormer) differs in a
few mechanisms, each a switch here, so that converted official checkpoints compute what they computed
there (`projects/BEVFormer/OFFICIAL_PARITY.md`): USE_CAN_BUS, ALIGNMENT "rotate_shift", TSA_VALUE
"input_query", SCA_QUERY_POS False, PILLAR_HEIGHTS "half_metre_inset".
"""

from fvcore.common.config import CfgNode as CN

from fd3d.config import register_config_extension

ALIGNMENTS = ("warp", "rotate_shift")
TSA_VALUES = ("layer_query", "input_query")
PILLAR_HEIGHTS = ("centered", "half_metre_inset")


@register_config_extension("BEVFormer")
def add_bevformer_config(cfg: CN) -> None:
    cfg.MODEL.BEVFORMER = CN()
    cfg.MODEL.BEVFORMER.BEV_H = 200
    cfg.MODEL.BEVFORMER.BEV_W = 200
    cfg.MODEL.BEVFORMER.ENCODER_LAYERS = 6
    # Heights sampled along each BEV pillar, spread over the point-cloud range's z extent.
    cfg.MODEL.BEVFORMER.NUM_Z_ANCHORS = 4
    # "centered": the centres of NUM_Z_ANCHORS equal slices of [z0, z1]; "half_metre_inset": evenly from
    # z0 + 0.5 to z1 - 0.5 (official: linspace(0.5, Z - 0.5, D) / Z of the range, metres when Z is).
    cfg.MODEL.BEVFORMER.PILLAR_HEIGHTS = "centered"
    # Spatial cross-attention samples per camera level, shared out among the Z anchors.
    cfg.MODEL.BEVFORMER.SCA_POINTS = 8
    # Whether spatial cross-attention predicts its offsets from query + BEV positional embedding (fd3d)
    # or from the query alone (official).
    cfg.MODEL.BEVFORMER.SCA_QUERY_POS = True
    cfg.MODEL.BEVFORMER.TSA_POINTS = 4
    # What temporal self-attention's two value maps are. "layer_query" (fd3d): the aligned previous BEV
    # (without history: the initial BEV queries) and the layer's input. "input_query" (official): with
    # history the aligned previous BEV and the encoder's input queries, the same in every layer; without
    # history the layer's input twice.
    cfg.MODEL.BEVFORMER.TSA_VALUE = "layer_query"
    cfg.MODEL.BEVFORMER.DECODER_POINTS = 4
    cfg.MODEL.BEVFORMER.NUM_CAMS = 6
    # Previous frames whose BEV feeds temporal self-attention (0 = single frame).
    cfg.MODEL.BEVFORMER.QUEUE_LENGTH = 3
    # How the previous BEV is brought onto the current frame. "warp": resampled (bilinear) at the current
    # cells mapped into the previous LiDAR frame by `curr2prev_lidar`. "rotate_shift" (official): rotated
    # (nearest) by the CAN-bus yaw change about ROTATE_CENTER, and the previous queue's sampling points
    # shifted by the CAN-bus translation instead of moving the map.
    cfg.MODEL.BEVFORMER.ALIGNMENT = "warp"
    cfg.MODEL.BEVFORMER.ROTATE_PREV_BEV = True
    # (x = column, y = row) pixel of the BEV map the rotation turns about; the official [100, 100] is the
    # ego on a 200 x 200 grid only, and off the grid (zeros rotate in) on smaller ones.
    cfg.MODEL.BEVFORMER.ROTATE_CENTER = [100.0, 100.0]
    cfg.MODEL.BEVFORMER.USE_SHIFT = True
    # Add an MLP embedding of the 18-value CAN-bus vector (`batch["can_bus"]`, fd3d.data.can_bus) to every
    # BEV query: Linear(18, C/2), ReLU, Linear(C/2, C), ReLU[, LayerNorm(C) with CAN_BUS_NORM].
    cfg.MODEL.BEVFORMER.USE_CAN_BUS = False
    cfg.MODEL.BEVFORMER.CAN_BUS_NORM = True
