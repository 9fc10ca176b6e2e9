"""Loading the frozen expert: from a model folder or Hub id (weights + its own config), else from a config.

Experts come the way users take them from the Hub: `DISTILL.EXPERT.WEIGHTS` names a folder written by
`fd3d.hub.save_pretrained` or a repository id, whose config.json describes the architecture and whose
weights load strictly (a mismatch lists the keys). `DISTILL.EXPERT.OPTS` overrides either config.
"""

from __future__ import annotations

from fvcore.common.config import CfgNode
from torch import nn

from fd3d.config import ConfigError, apply_overrides, load_config
from fd3d.hub import WEIGHTS_NAME, load_pretrained_config, load_weights_into
from fd3d.modeling.registry import build_model


def load_expert_config(cfg: CfgNode) -> CfgNode:
    """The expert's config: the weights folder's config.json, else `DISTILL.EXPERT.CONFIG_FILE`."""
    expert = cfg.DISTILL.EXPERT
    if expert.WEIGHTS:
        saved, _ = load_pretrained_config(expert.WEIGHTS, expert.REVISION or None)
        return apply_overrides(saved, list(expert.OPTS))
    if not expert.CONFIG_FILE:
        raise ConfigError("set DISTILL.EXPERT.WEIGHTS (model folder or Hub id) or DISTILL.EXPERT.CONFIG_FILE")
    return load_config(expert.CONFIG_FILE, list(expert.OPTS))


def build_frozen_expert(cfg: CfgNode) -> tuple[nn.Module, CfgNode]:
    """Expert detector in eval mode with every parameter frozen, and its config."""
    expert_cfg = load_expert_config(cfg)
    weights = cfg.DISTILL.EXPERT.WEIGHTS
    # trained weights include the backbone: do not fetch ImageNet weights on top of them
    build_cfg = apply_overrides(expert_cfg, ["MODEL.BACKBONE.PRETRAINED", ""]) if weights else expert_cfg
    expert = build_model(build_cfg)
    if weights:
        _, folder = load_pretrained_config(weights, cfg.DISTILL.EXPERT.REVISION or None)
        load_weights_into(expert, folder / WEIGHTS_NAME)
    expert.requires_grad_(False)
    return expert.eval(), expert_cfg
