"""Atomic checkpoints: `accelerator.save_state` into a hidden folder, then one rename makes it visible.

A crash mid-write leaves only a `.tmp-*` folder, which is ignored and cleaned; the last complete
checkpoint is never touched until a newer one is complete.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from accelerate import Accelerator

CHECKPOINT_DIR = "checkpoints"
STEP_PATTERN = re.compile(r"^step_(\d{8})$")
PROGRESS_FILE = "progress.json"


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints as (step, folder), oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := STEP_PATTERN.match(p.name))]
    return sorted(found)


def last_checkpoint(output_dir: str | Path) -> tuple[int, Path] | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, step: int, keep: int) -> Path:
    """Write the full training state of `step`; keep the newest `keep` checkpoints."""
    root = checkpoint_root(output_dir)
    final = root / f"step_{step:08d}"
    staging = root / f".tmp-step_{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    if accelerator.is_main_process:
        (staging / PROGRESS_FILE).write_text(json.dumps({"step": step}))
        if final.exists():  # a re-run of the same step: replace it only now that the new one is complete
            shutil.rmtree(final)
        staging.rename(final)
        for _, old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, folder: Path) -> int:
    """Restore model, optimizer, scheduler, RNG states; returns the step the checkpoint was taken at."""
    progress = folder / PROGRESS_FILE
    if not progress.is_file():
        raise FileNotFoundError(f"{folder} is not an fd3d checkpoint: {PROGRESS_FILE} is missing")
    accelerator.load_state(str(folder))
    return int(json.loads(progress.read_text())["step"])
