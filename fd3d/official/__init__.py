"""Official BEVFormer / DETR3D (mmcv) checkpoints and configs, read without mmcv and converted to fd3d."""

from fd3d.official.convert import OFFICIAL_MODEL_REGISTRY, ConversionError, OfficialModel, convert_checkpoint
from fd3d.official.mmcv_config import OfficialConfigError, load_official_config

__all__ = [
    "OFFICIAL_MODEL_REGISTRY",
    "ConversionError",
    "OfficialConfigError",
    "OfficialModel",
    "convert_checkpoint",
    "load_official_config",
]
