"""Loading the frozen expert: from a model folder or Hub id (weights + its own config), else from a config.

Experts come the way users take them from the Hub: `DISTILL.EXPERT.WEIGHTS` names a folder written by
`fd3d.hub.save_pretrained` or a repository id, whose config.json describes the architecture and whose
weights load strictly (a mismatch lists the keys). `DISTILL.EXPERT.OPTS` overrides either config.
"""

from __future__ import annotations

from fvcore.common.config import CfgNode
from torch import nn

from fd3d.config import ConfigError, apply_overrides, load_config
from fd3d.hub import WEIGHTS_NAME, build_with_weights, load_pretrained_config
from fd3d.modeling.registry import build_model


def build_frozen_expert(cfg: CfgNode) -> tuple[nn.Module, CfgNode]:
    """Expert detector in eval mode with every parameter frozen, and its config."""
    expert = cfg.DISTILL.EXPERT
    if expert.WEIGHTS:
        saved, folder = load_pretrained_config(expert.WEIGHTS, expert.REVISION or None)
        expert_cfg = apply_overrides(saved, list(expert.OPTS))
        model = build_with_weights(expert_cfg, folder / WEIGHTS_NAME)
    elif expert.CONFIG_FILE:
        expert_cfg = load_config(expert.CONFIG_FILE, list(expert.OPTS))
        model = build_model(expert_cfg)
    else:
        raise ConfigError("set DISTILL.EXPERT.WEIGHTS (model folder or Hub id) or DISTILL.EXPERT.CONFIG_FILE")
    model.requires_grad_(False)
    return model.eval(), expert_cfg
