"""DETR3D as an fd3d plug-in: importing this registers the meta-architecture, its config keys and the
converter of official DETR3D checkpoints."""

from . import (
    config,  # noqa: F401  (registers MODEL.DETR3D)
    official,  # noqa: F401  (registers the official "Detr3D" converter)
)
from .meta_arch import DETR3D

__all__ = ["DETR3D"]
