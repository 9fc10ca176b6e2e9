"""DETR3D needs no keys beyond the shared `MODEL.HEAD`, `MODEL.BACKBONE` and `MODEL.FPN`."""

from fvcore.common.config import CfgNode as CN

from fd3d.config import register_config_extension


@register_config_extension("DETR3D")
def add_detr3d_config(cfg: CN) -> None:
    cfg.MODEL.DETR3D = CN()
    # Cameras the per-query attention weights are predicted for (nuScenes: 6).
    cfg.MODEL.DETR3D.NUM_CAMS = 6
