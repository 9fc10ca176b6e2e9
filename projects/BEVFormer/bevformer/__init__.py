"""BEVFormer as an fd3d plug-in: importing this registers the meta-architecture and its config keys."""

from . import config  # noqa: F401  (registers MODEL.BEVFORMER)
from .meta_arch import BEVFormer

__all__ = ["BEVFormer"]
