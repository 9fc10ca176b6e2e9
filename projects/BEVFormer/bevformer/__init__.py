"""BEVFormer as an fd3d plug-in: importing this registers the meta-architecture, its config keys and the
converter of official BEVFormer checkpoints."""

from . import (
    config,  # noqa: F401  (registers MODEL.BEVFORMER)
    official,  # noqa: F401  (registers the official "BEVFormer" converter)
)
from .meta_arch import BEVFormer

__all__ = ["BEVFormer"]
