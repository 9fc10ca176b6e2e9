"""Configs as data: fvcore `CfgNode` defaults, YAML files with `_BASE_` inheritance, `KEY VALUE` overrides."""

from fd3d.config.config import (
    ConfigError,
    apply_overrides,
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
    "config_from_dict",
    "config_overlay",
    "config_to_dict",
    "get_cfg",
    "load_config",
    "register_config_extension",
]
