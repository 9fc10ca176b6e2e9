"""The distillation configs shipped in `configs/distill/`: one file per detector pair, one per method.

A distillation run is a pair (`pairs/<pair>.yaml`: the apprentice's config plus the expert's) with a method
on top (`methods/<method>.yaml`: the loss terms and their settings), merged in that order:
`load_config(distill_config("bevformer_cpu", "fd3d"))`, or on the command line
`--config-file configs/distill/pairs/bevformer_cpu.yaml --config-file configs/distill/methods/fd3d.yaml`.
Detector configs live with their plug-in, in `projects/<Name>/configs/`. The files are read from the
source tree (a checkout or an editable install), they are not part of an installed package.
"""

from __future__ import annotations

from pathlib import Path

from fd3d.config.config import ConfigError

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
DISTILL_ROOT = CONFIG_ROOT / "distill"


def _names(kind: str) -> list[str]:
    folder = DISTILL_ROOT / kind
    if not folder.is_dir():
        raise ConfigError(
            f"no distillation configs at {folder}: they ship in the source tree, not in the wheel"
        )
    return sorted(path.stem for path in folder.glob("*.yaml"))


def distill_pairs() -> list[str]:
    """Names of the shipped detector pairs (`configs/distill/pairs/<name>.yaml`)."""
    return _names("pairs")


def distill_methods() -> list[str]:
    """Names of the shipped methods and variants (`configs/distill/methods/<name>.yaml`)."""
    return _names("methods")


def distill_config(pair: str, method: str) -> list[Path]:
    """[pair file, method file]: one distillation run's overlays, in the order `load_config` merges them."""
    for kind, name, shipped in (("pair", pair, distill_pairs()), ("method", method, distill_methods())):
        if name not in shipped:
            raise ConfigError(f"unknown distillation {kind} {name!r}; shipped: {shipped}")
    return [DISTILL_ROOT / "pairs" / f"{pair}.yaml", DISTILL_ROOT / "methods" / f"{method}.yaml"]
