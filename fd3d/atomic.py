"""Write a file or a folder so that readers see the old one or the complete new one, never a part of it.

Every output a later step reads (exports, model folders, checkpoints, cached features, dumps, study
results) goes through here: the content is written to a hidden sibling, then renamed over the target
(a rename within a folder is atomic), and a failed write removes the sibling and leaves the target as
it was. Only a hard kill can leave a sibling behind; its name starts with `.NAME.` and it is safe to
delete.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call `write(partial)` to fill a sibling file, then rename it to `path` (parents created).

    Each call writes its own `.NAME.<hex>.partial`, so processes writing the same path at once never
    mix their bytes: the last rename wins, with a complete file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    return write_atomically(path, lambda partial: partial.write_text(text))


def write_json_atomically(path: str | os.PathLike, content: object) -> Path:
    """`content` as indented JSON (the form every fd3d result, summary and plan is kept in, readable in a
    diff), written atomically."""
    return write_text_atomically(path, json.dumps(content, indent=2) + "\n")


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty hidden folder `.NAME.tmp-<hex>` beside `path` to fill; a clean exit flushes its
    files to disk and puts it in place of `path` (`replace_folder`), an exception deletes it.

    The staging folder is made with a plain mkdir, so it gets the umask's permissions like any folder
    the user makes; parents of `path` are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "tmp")
    staging.mkdir()
    try:
        yield staging
        _fsync_files(staging)
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_folder(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Rename the complete folder `staging` to `target`; an existing `target` is renamed aside first
    (`.NAME.old-<hex>`), put back if the second rename fails, and deleted last.

    For writers that fill `staging` from several processes and commit from one; a single process
    uses `atomic_folder`.
    """
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.replace(staging, target)
        return
    old = _sibling(target, "old")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sibling(target: Path, kind: str) -> Path:
    """A unique hidden name beside `target`: `.NAME.tmp-<hex>` (being written) or `.NAME.old-<hex>`."""
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:12]}")


def _fsync_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
