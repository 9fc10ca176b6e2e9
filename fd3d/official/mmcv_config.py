"""Read an official (mmcv 1.x) config file as plain Python, without mmcv.

mmcv configs are Python modules whose top-level variables form the config, with `_base_` naming parent
files (relative to the file) whose dicts the child updates key by key; a child dict holding
`_delete_=True` replaces its parent's instead. That is all the official BEVFormer and DETR3D configs use.
The files are not executed (mmcv runs them as Python): `fd3d.official.literal_config` evaluates their
assignments of plain data and refuses anything else by line, so a config from anywhere runs no code.
"""

from __future__ import annotations

import os
from pathlib import Path

from fd3d.official.literal_config import UnsupportedConfigSyntax, literal_assignments

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"


class OfficialConfigError(ValueError):
    """An official config that cannot be read, or asks for something fd3d does not support."""


def _merge(base: dict, child: dict) -> dict:
    """`child` over `base`, recursively for dicts; `_delete_=True` in a child dict drops the base's."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and not value.get(DELETE_KEY, False) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = {k: v for k, v in value.items() if k != DELETE_KEY}
        else:
            merged[key] = value
    return merged


def _variables(path: Path) -> dict:
    """The file's top-level variables, read without executing the file (`literal_assignments`)."""
    try:
        return literal_assignments(path)
    except (UnsupportedConfigSyntax, SyntaxError, ArithmeticError, TypeError, KeyError, IndexError) as error:
        raise OfficialConfigError(f"could not read config {path}: {type(error).__name__}: {error}") from error


def load_official_config(
    path: str | os.PathLike, skipped: list[str] | None = None, _seen: tuple[Path, ...] = ()
) -> dict:
    """The merged config dict of an mmcv config file, its `_base_` chain resolved relative to it.

    A missing base file is an error, unless `skipped` is a list: then it is left out and its path appended
    there (the official DETR3D configs name mmdetection3d's dataset and runtime files, which hold nothing
    the model reads; the caller reports what was skipped).
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise OfficialConfigError(f"config file not found: {file}")
    if file in _seen:
        raise OfficialConfigError(f"config {file} includes itself through _base_")
    variables = _variables(file)
    bases = variables.pop(BASE_KEY, [])
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else list(bases):
        base_file = (file.parent / base).resolve()
        if not base_file.is_file() and skipped is not None:
            skipped.append(f"{base} (relative to {file.name})")
            continue
        if not base_file.is_file():
            raise OfficialConfigError(
                f"{file} names _base_ {base!r}, which is not at {base_file} "
                "(--skip-missing-bases leaves such files out)"
            )
        merged = _merge(merged, load_official_config(base_file, skipped, (*_seen, file)))
    return _merge(merged, variables)
