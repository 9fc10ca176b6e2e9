"""Loading configs strictly: every key must exist in the defaults, and a typo fails loudly.

Detectron2's flow: `get_cfg()` returns the defaults, YAML files and command-line `KEY VALUE` pairs are
merged on top, and the result is frozen. Several files are overlays merged in order (a detector pair, then
a distillation method); each may inherit with `_BASE_`, one file or a list of files merged in order, each
relative to the file naming it. Detector projects add their own section (e.g. `MODEL.BEVFORMER`) with
`register_config_extension`, looked up from the files' `MODEL.META_ARCHITECTURE`, so the core never needs
to know a detector's keys.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml
from fvcore.common.config import BASE_KEY, CfgNode

from fd3d.config.defaults import _C
from fd3d.errors import ConfigError  # noqa: F401  (re-exported: fd3d.config.ConfigError)
from fd3d.plugins import load_projects

ConfigExtension = Callable[[CfgNode], None]
_EXTENSIONS: dict[str, ConfigExtension] = {}


def register_config_extension(meta_architecture: str) -> Callable[[ConfigExtension], ConfigExtension]:
    """Decorator for a project's `add_<name>_config(cfg)`, applied when that architecture is loaded."""

    def decorator(fn: ConfigExtension) -> ConfigExtension:
        _EXTENSIONS[meta_architecture] = fn
        return fn

    return decorator


def get_cfg(meta_architecture: str | None = None) -> CfgNode:
    """A mutable copy of the defaults, plus the section of `meta_architecture`'s project if given."""
    cfg = _C.clone()
    if meta_architecture is not None:
        load_projects()
        if meta_architecture not in _EXTENSIONS:
            raise ConfigError(
                f"MODEL.META_ARCHITECTURE {meta_architecture!r} has no registered project config; "
                f"registered: {sorted(_EXTENSIONS)}"
            )
        cfg.MODEL.META_ARCHITECTURE = meta_architecture
        _EXTENSIONS[meta_architecture](cfg)
    return cfg


# Keys holding file paths: a relative value is relative to the YAML file that sets it, like `_BASE_`.
PATH_KEYS = (("DISTILL", "EXPERT", "CONFIG_FILE"),)


class _PathResolvingCfgNode(CfgNode):
    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False) -> dict[str, Any]:
        # fvcore merges a `_BASE_` list in order; bases are loaded through this same method first, so
        # values they set are already absolute and a missing or malformed base is named with its inheritor.
        shown = os.path.normpath(filename)
        if not os.path.isfile(filename):
            raise ConfigError(f"config file not found: {shown}")
        try:
            loaded = super().load_yaml_with_base(filename, allow_unsafe=allow_unsafe)
        except yaml.YAMLError as error:
            raise ConfigError(f"{shown} is not valid YAML: {error}") from error
        except ConfigError as error:
            raise ConfigError(f"{error} (in the {BASE_KEY} of {shown})") from error
        except (AssertionError, AttributeError, TypeError) as error:  # empty file, bad _BASE_, section clash
            reason = f"{type(error).__name__}: {error}"
            raise ConfigError(f"{shown} cannot be read as a config: {reason}") from error
        if not isinstance(loaded, dict):
            raise ConfigError(f"{shown} must hold a mapping of config keys, got {type(loaded).__name__}")
        for path in PATH_KEYS:
            node = loaded
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(path[-1]) and not os.path.isabs(node[path[-1]]):
                node[path[-1]] = os.path.abspath(os.path.join(os.path.dirname(filename), node[path[-1]]))
        return loaded


def _parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """["A.B", "1", "C", "[2, 3]"] -> nested {"A": {"B": 1}, "C": [2, 3]} (YAML literals decoded)."""
    if len(overrides) % 2:
        raise ConfigError(f"overrides come in KEY VALUE pairs, got an odd number: {list(overrides)}")
    nested: dict[str, Any] = {}
    for key, raw in zip(overrides[0::2], overrides[1::2], strict=True):
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = CfgNode._decode_cfg_value(raw)
    return nested


def _check_keys(update: Mapping[str, Any], reference: CfgNode, prefix: str = "") -> None:
    """Raise ConfigError for the first key of `update` missing from `reference`, listing valid ones."""
    for key, value in update.items():
        full_key = f"{prefix}{key}"
        if key not in reference:
            close = difflib.get_close_matches(key, list(reference), n=1)
            hint = f" Did you mean {prefix}{close[0]}?" if close else ""
            raise ConfigError(
                f"unknown config key {full_key!r}.{hint} Valid keys under "
                f"{prefix.rstrip('.') or 'the root'}: {sorted(reference)}"
            )
        if isinstance(value, Mapping):
            if not isinstance(reference[key], CfgNode):
                raise ConfigError(f"config key {full_key!r} is a value, not a section")
            _check_keys(value, reference[key], prefix=f"{full_key}.")


def _merge(cfg: CfgNode, update: Mapping[str, Any], source: str) -> None:
    """Merge `update` into `cfg`; a bad key or value is named with `source` (a file, "overrides", ...)."""
    try:
        _check_keys(update, cfg)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from error
    try:
        cfg.merge_from_other_cfg(CfgNode(update))
    except ValueError as error:  # yacs' type check: name where the bad value came from
        raise ConfigError(f"{source}: {error}") from error


def config_from_dict(values: Mapping[str, Any], freeze: bool = True) -> CfgNode:
    """A config saved as a plain dict (e.g. a Hub folder's config.json), checked key by key like a file."""
    architecture = values.get("MODEL", {}).get("META_ARCHITECTURE", _C.MODEL.META_ARCHITECTURE)
    cfg = get_cfg(architecture)
    _merge(cfg, values, source="saved config")
    if freeze:
        cfg.freeze()
    return cfg


def apply_overrides(cfg: CfgNode, overrides: Sequence[str]) -> CfgNode:
    """A frozen copy of `cfg` with `KEY VALUE` overrides merged as strictly as on the command line."""
    updated = cfg.clone()
    updated.defrost()
    _merge(updated, _parse_overrides(overrides), source="overrides")
    updated.freeze()
    return updated


def config_to_dict(cfg: CfgNode) -> dict[str, Any]:
    """Plain nested dict (JSON-serialisable) of a config, the inverse of `config_from_dict`."""
    return {key: config_to_dict(value) if isinstance(value, CfgNode) else value for key, value in cfg.items()}


def config_overlay(cfg: CfgNode, base: CfgNode) -> dict[str, Any]:
    """The keys of `cfg` whose values differ from `base`, nested: what a YAML file with `_BASE_` needs."""
    overlay: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, CfgNode):
            nested = config_overlay(value, base.get(key, CfgNode()))
            if nested:
                overlay[key] = nested
        elif key not in base or base[key] != value:
            overlay[key] = list(value) if isinstance(value, tuple) else value
    return overlay


ConfigFiles = str | os.PathLike | Sequence[str | os.PathLike] | None


def config_files(config_file: ConfigFiles) -> list[str]:
    """One path, or a sequence of paths (overlays in merge order), as a list of strings."""
    if config_file is None:
        return []
    if isinstance(config_file, str | os.PathLike):
        return [os.fspath(config_file)]
    return [os.fspath(path) for path in config_file]


def load_config(
    config_file: ConfigFiles = None,
    overrides: Sequence[str] = (),
    freeze: bool = True,
) -> CfgNode:
    """Defaults + the project's section + each config file in order (with its `_BASE_` chain) + `KEY VALUE`
    overrides.

    `config_file` is one path or a list of them: overlays merged in order, later files winning, as if they
    were a `_BASE_` list (`load_config([pair_yaml, method_yaml])`). The architecture whose keys are valid
    is the overrides' `MODEL.META_ARCHITECTURE`, else the last file's that sets one.
    """
    paths = config_files(config_file)
    from_files = [(path, _PathResolvingCfgNode.load_yaml_with_base(path)) for path in paths]
    from_cli = _parse_overrides(overrides)
    architectures = [loaded.get("MODEL", {}).get("META_ARCHITECTURE") for _, loaded in from_files]
    architecture = (
        from_cli.get("MODEL", {}).get("META_ARCHITECTURE")
        or next((name for name in reversed(architectures) if name), None)
        or _C.MODEL.META_ARCHITECTURE
    )
    cfg = get_cfg(architecture)
    for path, loaded in from_files:
        _merge(cfg, loaded, source=path)
    _merge(cfg, from_cli, source="command-line overrides")
    if freeze:
        cfg.freeze()
    return cfg
