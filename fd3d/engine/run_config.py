"""The config a run started with, kept in OUTPUT_DIR, and what `--resume` may change of it.

A resumed run restores the model, optimizer and schedule from its checkpoint, so most keys cannot change
on resume: a new `SOLVER.BASE_LR` would be overridden by the restored schedule while the saved model's
config.json recorded the new value, and a new architecture cannot load the saved weights. Resume compares
the config with the one the run started with, applies the keys that only steer the rest of the run (and
says so), and refuses the others, naming each with its saved and its new value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fvcore.common.config import CfgNode

from fd3d.atomic import write_json_atomically
from fd3d.config import ConfigError, config_to_dict, get_cfg

RUN_CONFIG = "run_config.json"
# keys a resumed run can take a new value of: where the run writes, how often it logs, checkpoints and
# evaluates, its test data, its data loading; and its length (the cosine schedule is a function of
# SOLVER.MAX_ITER and the restored step)
APPLICABLE_ON_RESUME = (
    "OUTPUT_DIR",
    "SOLVER.MAX_ITER",
    "SOLVER.LOG_PERIOD",
    "SOLVER.CHECKPOINT_PERIOD",
    "SOLVER.MAX_CHECKPOINTS_KEPT",
    "TEST.",
    "DATASETS.TEST_SPLIT",
    "DATALOADER.NUM_WORKERS",
)


def flat_config(cfg: CfgNode | dict, prefix: str = "") -> dict[str, Any]:
    """{"SECTION.KEY": value} of a (nested) config; tuples as lists, as JSON keeps them."""
    nested = config_to_dict(cfg) if isinstance(cfg, CfgNode) else cfg
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def record_run_config(cfg: CfgNode) -> Path:
    """Write OUTPUT_DIR/run_config.json (atomically): the config of a run that starts from step 0."""
    return write_json_atomically(Path(cfg.OUTPUT_DIR) / RUN_CONFIG, config_to_dict(cfg))


def changes_on_resume(cfg: CfgNode) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """({key: (saved, new)} that apply, {key: (saved, new)} that cannot) against OUTPUT_DIR/run_config.json
    (both empty when the run has no saved config, e.g. one started before fd3d kept it)."""
    path = Path(cfg.OUTPUT_DIR) / RUN_CONFIG
    if not path.is_file():
        return {}, {}
    saved, new = flat_config(json.loads(path.read_text())), flat_config(cfg)
    # a key the saved config lacks was added by a later fd3d: at its default it changes nothing
    defaults = flat_config(get_cfg(cfg.MODEL.META_ARCHITECTURE))
    saved = {**{k: defaults[k] for k in new.keys() - saved.keys() if k in defaults}, **saved}
    changed = {
        key: (saved.get(key, "<absent>"), new.get(key, "<absent>"))
        for key in sorted(set(saved) | set(new))
        if saved.get(key, "<absent>") != new.get(key, "<absent>")
    }
    applicable = {k: v for k, v in changed.items() if k.startswith(APPLICABLE_ON_RESUME)}
    return applicable, {k: v for k, v in changed.items() if k not in applicable}


def check_resume_config(cfg: CfgNode) -> dict[str, tuple]:
    """Raise ConfigError naming every key whose change a resumed run cannot apply; return those it applies
    (the caller says so)."""
    applicable, refused = changes_on_resume(cfg)
    if refused:
        listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in refused.items())
        raise ConfigError(
            f"--resume in {cfg.OUTPUT_DIR}: the run started with other values of keys a resumed run cannot "
            f"change ({listed}); resume with the saved values ({Path(cfg.OUTPUT_DIR) / RUN_CONFIG}) or "
            "train into a new OUTPUT_DIR"
        )
    return applicable
