"""Shared detector building blocks and the meta-architecture registry (`build_model(cfg)`)."""

from fd3d.modeling.registry import META_ARCH_REGISTRY, build_model

__all__ = ["META_ARCH_REGISTRY", "build_model"]
