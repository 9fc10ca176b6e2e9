"""Configs as data: fvcore `CfgNode` defaults, YAML files (overlays merged in order, `_BASE_` inheritance)
and `KEY VALUE` overrides."""

from fd3d.config.catalog import distill_config, distill_methods, distill_pairs
from fd3d.config.config import (
    ConfigError,
    apply_overrides,
    config_files,
    config_from_dict,
    config_overlay,
    config_to_dict,
    get_cfg,
    load_config,
    register_config_extension,
)

__all__ = [
    "ConfigError",
    "apply_overrides",
    "config_files",
    "config_from_dict",
    "config_overlay",
    "config_to_dict",
    "distill_config",
    "distill_methods",
    "distill_pairs",
    "get_cfg",
    "load_config",
    "register_config_extension",
]
