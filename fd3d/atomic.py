"""Write a file so that readers see the old file or the complete new one, never a part of it.

Every output a later step reads (exports, model cards' configs, dumps, study results) goes through here:
the content is written to a hidden sibling, then renamed over the target (a rename within a folder is
atomic), and a failed write removes the sibling and leaves the target as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call `write(partial)` to fill a sibling file, then rename it to `path` (parents created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    return write_atomically(path, lambda partial: partial.write_text(text))
