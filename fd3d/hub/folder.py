"""What a model folder holds, the layout of a Hugging Face model repository, and how it is checked.

- `config.json`: `{"fd3d_config": <the full fd3d config as a dict>, "format_version": 1}`;
- `model.safetensors`: the detector's `state_dict` (the trained backbone included; `fd3d.hub.weights`);
- `README.md`: a model card (architecture, input size, backbone, NDS/mAP/TP metrics, GFLOPs, the expert
  it was distilled from and how; `fd3d.hub.card`).
"""

from __future__ import annotations

import json
from pathlib import Path

from fvcore.common.config import CfgNode

from fd3d.config import ConfigError, config_from_dict, config_to_dict
from fd3d.hub.errors import MAX_LISTED, HubError, describe

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT_VERSION = 1


def write_config(cfg: CfgNode, file: Path) -> None:
    payload = {"fd3d_config": config_to_dict(cfg), "format_version": FORMAT_VERSION}
    file.write_text(json.dumps(payload, indent=2) + "\n")


def read_config(file: Path) -> CfgNode:
    """The config saved in `file` (a model folder's config.json), frozen, exactly as saved."""
    try:
        payload = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HubError(f"cannot read {file}: {describe(error)}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("fd3d_config"), dict):
        raise HubError(f"{file} is not an fd3d config: expected an object with an 'fd3d_config' entry")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise HubError(
            f"{file} has format_version {version!r}; this fd3d reads format_version {FORMAT_VERSION} "
            "(a newer fd3d wrote it? upgrade fd3d)"
        )
    try:
        return config_from_dict(payload["fd3d_config"])
    except ConfigError as error:
        raise HubError(f"{file} does not fit this fd3d's config keys: {error}") from error


def check_model_folder(folder: Path) -> None:
    """Raise `HubError` unless `folder` holds a config and a weights file."""
    if not folder.is_dir():
        raise HubError(f"model folder not found: {folder}")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise HubError(
                f"{folder} is not an fd3d model folder: missing {name} "
                f"(fd3d.hub.save_pretrained writes {CONFIG_NAME} and {WEIGHTS_NAME})"
            )


def check_replaceable(target: Path) -> None:
    """Refuse to replace anything but an empty folder or a model folder: a typo must not delete a tree."""
    if not target.exists():
        return
    if not target.is_dir():
        raise HubError(f"cannot save a model to {target}: it exists and is not a folder")
    entries = list(target.iterdir())
    if entries and not (target / CONFIG_NAME).is_file():
        names = sorted(entry.name for entry in entries)[:MAX_LISTED]
        raise HubError(
            f"cannot save a model to {target}: it is a non-empty folder without {CONFIG_NAME} "
            f"(holds {names}); save_pretrained replaces the whole folder, so it only overwrites empty "
            "folders and model folders"
        )
