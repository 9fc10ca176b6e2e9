"""Atomic checkpoints: `accelerator.save_state` into a hidden folder, then one rename makes it visible.

A crash mid-write leaves only a `.tmp-*` folder, which is ignored and cleaned; the last complete
checkpoint is never touched until a newer one is complete. Every process writes into the same staging
folder, so its name is fixed by the step; the main process renames it (`fd3d.atomic.replace_folder`)
once all have written.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from fd3d.atomic import replace_folder
from fd3d.integrity import sha256_of

CHECKPOINT_DIR = "checkpoints"
STEP_PATTERN = re.compile(r"^step_(\d{8})$")
PROGRESS_FILE = "progress.json"
# what `accelerator.save_state` always writes besides the random states; any other file it wrote
# (more optimizers, registered objects, sampler, scaler) is checked when present
REQUIRED_FILES = ("model.safetensors", "optimizer.bin")


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk); names the folder and the free space."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint, or every checkpoint of a run, cannot be read back; names each and its bad file."""


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
    """The newest checkpoint that can be read back (`checkpoint_problem`), or None when there is none.

    Newer corrupt ones are passed over and kept; `load_checkpoint` names them. Raises
    `CorruptCheckpointError` listing them all when checkpoints exist but none is intact.
    """
    corrupt = []
    for step, folder in reversed(list_checkpoints(output_dir)):
        problem = checkpoint_problem(folder)
        if problem is None:
            return step, folder
        corrupt.append(f"{folder} ({problem})")
    if corrupt:
        raise CorruptCheckpointError(
            f"no intact checkpoint in {checkpoint_root(output_dir)}: {'; '.join(corrupt)}"
        )
    return None


def newest_safe_checkpoint(output_dir: str | Path, max_step: int) -> tuple[int, Path] | None:
    """The newest intact checkpoint at or before `max_step` whose model weights are all finite, or None.

    A loss that turns NaN at step k (k updates done) was computed with exactly the weights the checkpoint
    of step k holds, which are then bad even when still finite (a 1e30 learning rate): the caller passes
    max_step = k - 1 for a diverged run, k when the input batch was at fault."""
    for step, folder in reversed(list_checkpoints(output_dir)):
        if step > max_step or checkpoint_problem(folder) is not None:
            continue
        if all(bool(torch.isfinite(t).all()) for t in load_file(str(folder / "model.safetensors")).values()):
            return step, folder
    return None


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, step: int, keep: int) -> Path:
    """Write the full training state of `step`; keep the newest `keep` checkpoints."""
    root = checkpoint_root(output_dir)
    final = root / f"step_{step:08d}"
    staging = root / f".tmp-step_{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(staging))
    except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError("unexpected pos")
        shutil.rmtree(staging, ignore_errors=True)  # a partial checkpoint must not keep the disk full
        free = shutil.disk_usage(root).free
        raise CheckpointWriteError(
            f"could not write the checkpoint of step {step} to {staging} ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:300]}); {free / 2**20:.0f} MiB free on that disk. The partial "
            f"checkpoint was removed and the previous ones are intact: free space, then resume"
        ) from error
    accelerator.wait_for_everyone()  # every process's RNG state is in `staging` before it is renamed
    if accelerator.is_main_process:
        digests = {path.name: sha256_of(path) for path in sorted(staging.iterdir()) if path.is_file()}
        (staging / PROGRESS_FILE).write_text(json.dumps({"step": step, "sha256": digests}))
        replace_folder(staging, final)  # a re-run of the same step replaces it only now, complete
        for _, old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
        for stale in [*root.glob(".tmp-*"), *root.glob(".step_*.old-*")]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, folder: Path) -> int:
    """Restore model, optimizers, schedules, RNG states; returns the step the checkpoint was taken at.

    Newer checkpoints next to `folder` that cannot be read back (those `last_checkpoint` passed over)
    are named in a warning; nothing is deleted.
    """
    problem = checkpoint_problem(folder)
    if problem is not None:
        raise CorruptCheckpointError(f"{folder} cannot be restored: {problem}")
    skipped = [
        f"{newer} ({why})" for newer in _newer_checkpoints(folder) if (why := checkpoint_problem(newer))
    ]
    if skipped and accelerator.is_main_process:
        warnings.warn(
            f"resuming from {folder}, the newest intact checkpoint; corrupt and left as they are: "
            + "; ".join(skipped),
            stacklevel=2,
        )
    accelerator.load_state(str(folder))
    return int(json.loads((folder / PROGRESS_FILE).read_text())["step"])


def _newer_checkpoints(folder: Path) -> list[Path]:
    match = STEP_PATTERN.match(folder.name)
    if match is None or folder.parent.name != CHECKPOINT_DIR:
        return []
    return [path for step, path in list_checkpoints(folder.parent.parent) if step > int(match[1])]


def checkpoint_problem(folder: Path) -> str | None:
    """Why `folder` cannot be restored (the missing or unreadable file), or None when it is intact.

    Checks the structure of every file `accelerator.load_state` reads, without loading it: safetensors
    headers must cover their file, the torch-saved files (optimizers, registered schedules, random states
    ...) must be whole zip archives. A truncated random-state file would otherwise be skipped silently.
    Then the content: each file's sha256 against the digest written with the checkpoint, so flipped bits
    in the weights (which leave the structure intact) are found too.
    """
    if not (folder / PROGRESS_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not an fd3d checkpoint: {PROGRESS_FILE} is missing")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            return f"{name} is missing"
    for path in sorted(folder.iterdir()):
        try:
            _check_file(path)
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile, SafetensorError) as error:
            return f"{path.name} is unreadable: {error}"
    # content: every file as it was written (checkpoints written before fd3d kept digests have none)
    digests = json.loads((folder / PROGRESS_FILE).read_text()).get("sha256", {})
    for name, expected in digests.items():
        if not (folder / name).is_file():
            return f"{name} is missing"
        if sha256_of(folder / name) != expected:
            return f"{name} has changed since it was written (sha256 differs from {PROGRESS_FILE})"
    return None


def _check_file(path: Path) -> None:
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt"):  # checks that the header's tensors cover the file exactly
            pass
    elif path.name == PROGRESS_FILE:
        int(json.loads(path.read_text())["step"])
    elif path.suffix in (".bin", ".pkl", ".pt"):  # torch.save's zip archives: the index is at the end
        with zipfile.ZipFile(path):
            pass
