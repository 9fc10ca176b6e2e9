"""Configs as data: fvcore `CfgNode` defaults, YAML files with `_BASE_` inheritance, `KEY VALUE` overrides."""

from fd3d.config.config import (
    ConfigError,
    get_cfg,
    load_config,
    register_config_extension,
)

__all__ = ["ConfigError", "get_cfg", "load_config", "register_config_extension"]
