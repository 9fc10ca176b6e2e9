"""One run of a study: trained once, continued from its last checkpoint when interrupted, reused when done.

A study is hundreds of CPU-hours split over many sittings, so a run's folder is its state: RUN_INFO is
written last, and a folder with it and its model is finished.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fd3d.atomic import write_json_atomically
from fd3d.config import load_config
from fd3d.engine.trainer import MODEL_DIR, train
from fd3d.hub import WEIGHTS_NAME
from fd3d.studies.protocols import ROOT

RUN_INFO = "run_info.json"  # written last: a run with it and its model is finished


def finished_run(out: Path) -> dict | None:
    """The stored {"seed", "metrics", "weights", ...} of a completed run, or None."""
    info_file = out / RUN_INFO
    if info_file.is_file() and (out / MODEL_DIR / WEIGHTS_NAME).is_file():
        return json.loads(info_file.read_text())
    return None


def reported_run(folder: Path, name: str) -> dict:
    """The finished run in `folder` that --report needs; naming the folder when it is not finished."""
    if (done := finished_run(folder)) is None:
        raise SystemExit(f"--report: no finished {name} in {folder}; run without --report first")
    return done


def finished_seeds(folder: Path, seeds: list[int]) -> list[dict]:
    """The finished runs among FOLDER/seed<k> for `seeds`."""
    return [run for seed in seeds if (run := finished_run(folder / f"seed{seed}")) is not None]


def shown(config: list[Path]) -> str:
    """A job's config files as they are printed: relative to the repository, joined by " + "."""
    return " + ".join(
        path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path) for path in config
    )


def run_job(name: str, config: list[Path], out: Path, overrides: list[str]) -> dict:
    """Train (or finish, or reuse) one run; returns {"seed", "metrics", "weights", "seconds"}."""
    if (done := finished_run(out)) is not None:
        return done
    print(f"[run] {name}: {shown(config)} -> {out}", flush=True)
    cfg = load_config(config, [*overrides, "OUTPUT_DIR", str(out)])
    start = time.perf_counter()
    metrics = train(cfg, resume=True)
    info = {"seed": cfg.SEED, "metrics": metrics, "weights": str(out / MODEL_DIR),
            "seconds_this_sitting": time.perf_counter() - start}  # fmt: skip
    write_json_atomically(out / RUN_INFO, info)
    print(f"[run] {name} seed {cfg.SEED}: NDS {metrics['NDS']:.4f} mAP {metrics['mAP']:.4f}", flush=True)
    return info


def expert_overrides(out: Path, expert_run: dict) -> list[str]:
    """What every distillation job of a study adds: the expert's weights and its feature cache in OUT."""
    cache = str(out / "expert_cache")
    return ["DISTILL.EXPERT.WEIGHTS", expert_run["weights"], "DISTILL.EXPERT.FEATURE_CACHE", cache]
