"""The weights file of a model folder: a detector's state dict as safetensors, loaded strictly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from fvcore.common.config import CfgNode
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialize
from torch import nn

from fd3d.hub.errors import MAX_LISTED, HubError, describe
from fd3d.modeling.registry import build_model


def save_weights(model: nn.Module, file: Path) -> None:
    """The state dict as contiguous CPU tensors; a tensor sharing storage with an earlier one is cloned,
    so every state-dict key is stored under its own name and loading compares keys one to one.

    The bytes are written with a plain open, so the file gets the umask's permissions like the other
    files of the folder (`safetensors.torch.save_file` makes every file 0600 since safetensors 0.8:
    safetensors/safetensors#782).
    """
    tensors: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages and tensor.numel():
            tensor = tensor.clone()
        seen_storages.add(storage)
        tensors[key] = tensor.contiguous()
    file.write_bytes(serialize(tensors, metadata={"format": "pt"}))


def load_weights_into(model: nn.Module, weights_file: str | os.PathLike) -> None:
    """Load a safetensors file into `model` strictly: every key present, none extra, every shape equal."""
    file = Path(weights_file)
    if not file.is_file():
        raise HubError(f"weights file not found: {file}")
    try:
        saved = load_file(str(file))
    except (OSError, SafetensorError) as error:
        raise HubError(f"cannot read the weights {file}: {describe(error)}") from error
    expected = model.state_dict()
    problems = _state_dict_mismatch(saved, expected)
    if problems:
        raise HubError(
            f"weights in {file} do not fit the model built from its config:\n" + "\n".join(problems)
        )
    model.load_state_dict(saved, strict=True)


def build_with_weights(cfg: CfgNode, weights_file: str | os.PathLike) -> nn.Module:
    """`build_model(cfg)` with `weights_file` loaded strictly, built with `MODEL.BACKBONE.PRETRAINED` ""
    (no ImageNet download: the weights file holds the trained backbone)."""
    build_cfg = cfg.clone()
    build_cfg.defrost()
    build_cfg.MODEL.BACKBONE.PRETRAINED = ""
    build_cfg.freeze()
    model = build_model(build_cfg)
    load_weights_into(model, weights_file)
    return model


def _state_dict_mismatch(
    saved: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> list[str]:
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    shapes = [
        f"{key}: saved {tuple(saved[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in saved and saved[key].shape != expected[key].shape
    ]
    problems = []
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", shapes),
    ):
        if items:
            listed = "\n    ".join(items[:MAX_LISTED])
            more = f"\n    ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
            problems.append(f"  {title} ({len(items)}):\n    {listed}{more}")
    return problems
