"""DETR3D: object queries read multi-camera FPN features at their projected 3D reference points."""

from __future__ import annotations

from fvcore.common.config import CfgNode

from fd3d.modeling.detector import Camera3DDetector
from fd3d.modeling.detr_head import DetectionTransformerHead
from fd3d.modeling.outputs import DetectorFeatures, HeadOutputs
from fd3d.modeling.registry import META_ARCH_REGISTRY

from .feature_sampling import ProjectedPointCrossAttention


@META_ARCH_REGISTRY.register()
class DETR3D(Camera3DDetector):
    def __init__(self, cfg: CfgNode) -> None:
        super().__init__(cfg)
        head = cfg.MODEL.HEAD
        if cfg.MODEL.FPN.OUT_CHANNELS != head.EMBED_DIMS:
            raise ValueError(
                f"MODEL.FPN.OUT_CHANNELS ({cfg.MODEL.FPN.OUT_CHANNELS}) must equal MODEL.HEAD.EMBED_DIMS "
                f"({head.EMBED_DIMS}): queries read FPN features directly"
            )
        num_cams, num_levels = cfg.MODEL.DETR3D.NUM_CAMS, cfg.MODEL.FPN.NUM_OUTS
        self.head = DetectionTransformerHead(
            cfg,
            self.num_classes,
            lambda: ProjectedPointCrossAttention(head.EMBED_DIMS, num_cams, num_levels, head.DROPOUT),
        )

    def extract_features(self, batch: dict) -> DetectorFeatures:
        pv, geometry = self.encode_images(batch)
        return DetectorFeatures(pv, self.pv_strides, geometry)

    def forward_head(self, features: DetectorFeatures, batch: dict) -> HeadOutputs:
        geometry = features.geometry
        context = {
            "pv": features.pv,
            "lidar2img": geometry.lidar2img,
            "image_size": geometry.image_size,
            "pc_range": self.pc_range,
        }
        return self.head(context, features.pv[0].shape[0])
