"""Loading the frozen expert: its own config, its weights, no gradients, always in eval mode."""

from __future__ import annotations

from pathlib import Path

from fvcore.common.config import CfgNode
from safetensors.torch import load_file
from torch import nn

from fd3d.config import ConfigError, load_config
from fd3d.modeling.registry import build_model

WEIGHTS_FILE = "model.safetensors"


def load_expert_config(cfg: CfgNode) -> CfgNode:
    """The expert's config from `DISTILL.EXPERT.CONFIG_FILE` with `DISTILL.EXPERT.OPTS` applied."""
    expert = cfg.DISTILL.EXPERT
    if not expert.CONFIG_FILE:
        raise ConfigError("DISTILL.EXPERT.CONFIG_FILE is empty: name the expert's config file")
    return load_config(expert.CONFIG_FILE, list(expert.OPTS))


def load_weights(model: nn.Module, weights: str) -> None:
    """Load `weights` (a folder holding model.safetensors, or the file itself) strictly into `model`."""
    path = Path(weights)
    file = path / WEIGHTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"expert weights not found: {file} (DISTILL.EXPERT.WEIGHTS must be a folder with {WEIGHTS_FILE})"
        )
    missing, unexpected = model.load_state_dict(load_file(str(file)), strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"weights in {file} do not fit the expert's config: missing {missing[:5]}…({len(missing)}), "
            f"unexpected {unexpected[:5]}…({len(unexpected)})"
        )


def build_frozen_expert(cfg: CfgNode) -> tuple[nn.Module, CfgNode]:
    """Expert detector in eval mode with every parameter frozen, and its config."""
    expert_cfg = load_expert_config(cfg)
    expert = build_model(expert_cfg)
    if cfg.DISTILL.EXPERT.WEIGHTS:
        load_weights(expert, cfg.DISTILL.EXPERT.WEIGHTS)
    expert.requires_grad_(False)
    return expert.eval(), expert_cfg
