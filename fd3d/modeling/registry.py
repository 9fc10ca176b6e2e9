"""Detectron2-style meta-architecture registry: projects register detectors, `build_model` builds one."""

from __future__ import annotations

from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry
from torch import nn

from fd3d.plugins import ENTRY_POINT_GROUP, load_projects

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Camera-only 3D detectors. A registered class is called as `cls(cfg)` and must implement the
`fd3d.modeling.detector.Camera3DDetector` interface.
"""


def build_model(cfg: CfgNode) -> nn.Module:
    """The detector named by `cfg.MODEL.META_ARCHITECTURE`, freshly initialised (no detector weights)."""
    load_projects()
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in META_ARCH_REGISTRY:
        registered = sorted(name for name, _ in META_ARCH_REGISTRY)
        raise KeyError(
            f"MODEL.META_ARCHITECTURE {name!r} is not registered; registered: {registered}. "
            f"Projects are found through the {ENTRY_POINT_GROUP!r} entry points of installed packages "
            f"(pip install -e . registers the ones in projects/)."
        )
    return META_ARCH_REGISTRY.get(name)(cfg)
