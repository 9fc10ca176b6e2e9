"""The few calls most users need, gathered behind `import fd3d` (see `fd3d.__init__`).

`list_configs` is fd3d's `timm.list_models`: what ships with the source tree, by kind, each name with the
path to pass on (`load_config` for detector configs, `distill_config` for pairs and methods,
`from_pretrained` for zoo models). `evaluate` scores a detector, a model folder or a Hub id on a
nuScenes-format split with the official devkit.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from pathlib import Path

from torch import nn

from fd3d.config import ConfigError
from fd3d.config.catalog import DISTILL_ROOT, distill_methods, distill_pairs
from fd3d.evaluation.inference import evaluate_model
from fd3d.hub import CONFIG_NAME, from_pretrained
from fd3d.plugins import load_projects

CONFIG_KINDS = ("detectors", "pairs", "methods", "zoo")


def _project_roots() -> dict[str, Path]:
    """{project name: its folder} of every installed detector plug-in (`projects/<Name>`)."""
    roots = {}
    for module in load_projects():
        package = Path(importlib.import_module(module).__file__).parent
        roots[package.parent.name] = package.parent
    return roots


def _shipped(kind: str) -> dict[str, Path]:
    if kind == "pairs":
        return {name: DISTILL_ROOT / "pairs" / f"{name}.yaml" for name in distill_pairs()}
    if kind == "methods":
        return {name: DISTILL_ROOT / "methods" / f"{name}.yaml" for name in distill_methods()}
    found = {}
    for project, root in _project_roots().items():
        if kind == "detectors":
            found.update({f"{project}/{f.stem}": f for f in (root / "configs").glob("*.yaml")})
        else:
            found.update(
                {f"{project}/{d.name}": d for d in (root / "zoo").glob("*") if (d / CONFIG_NAME).is_file()}
            )
    return found


def list_configs(kind: str | None = None, pattern: str = "*") -> dict:
    """What ships, by name: {name: path} of one `kind` (one of CONFIG_KINDS), or {kind: {name: path}} of
    all of them; `pattern` filters names with shell wildcards (`"BEVFormer/cpu*"`)."""
    if kind is not None and kind not in CONFIG_KINDS:
        raise ConfigError(f"unknown kind {kind!r}; kinds: {list(CONFIG_KINDS)}")
    kinds = CONFIG_KINDS if kind is None else (kind,)
    listed = {
        name: {n: p for n, p in sorted(_shipped(name).items()) if fnmatch.fnmatch(n, pattern)}
        for name in kinds
    }
    return listed if kind is None else listed[kind]


def evaluate(
    model: nn.Module | str | os.PathLike,
    dataroot: str | os.PathLike,
    out_dir: str | os.PathLike,
    version: str = "v1.0-trainval",
    split: str = "val",
    progress: bool = True,
    temporal_protocol: str = "",
) -> dict:
    """Official devkit metrics (NDS, mAP, TP errors) of a detector, model folder or Hub id on `split` of a
    nuScenes-format dataroot; the devkit's files and metrics.json are written to `out_dir`. A temporal
    detector is scored under `temporal_protocol` ("queue" or "scene"; "" for its config's own)."""
    detector = from_pretrained(model) if isinstance(model, (str, os.PathLike)) else model
    return evaluate_model(detector, dataroot, version, split, out_dir, progress, temporal_protocol)
