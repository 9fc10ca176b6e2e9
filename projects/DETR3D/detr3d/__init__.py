"""DETR3D as an fd3d plug-in: importing this registers the meta-architecture and its config keys."""

from . import config  # noqa: F401  (registers MODEL.DETR3D)
from .meta_arch import DETR3D

__all__ = ["DETR3D"]
