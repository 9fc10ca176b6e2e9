"""fd3d.atomic: a file or a folder is either the old one or the complete new one, and nothing is left over."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fd3d.atomic import (
    atomic_folder,
    replace_folder,
    write_atomically,
    write_json_atomically,
    write_text_atomically,
)


def _tree(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text() for path in folder.rglob("*") if path.is_file()}


def test_writers_of_one_file_at_once_each_use_their_own_partial(tmp_path):
    target = tmp_path / "out.txt"

    def outer(partial: Path) -> None:
        partial.write_text("outer")
        write_text_atomically(target, "inner")  # another writer finishes while this one is half-way

    write_atomically(target, outer)
    assert target.read_text() == "outer"  # the last rename wins, complete
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_failed_file_write_keeps_the_old_file(tmp_path):
    target = write_text_atomically(tmp_path / "out.txt", "old")

    def fails(partial: Path) -> None:
        partial.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, fails)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_json_is_written_indented_or_not_at_all(tmp_path):
    target = tmp_path / "deep" / "results.json"
    write_json_atomically(target, {"nds": 0.25, "seeds": [0, 1]})
    assert target.read_text() == '{\n  "nds": 0.25,\n  "seeds": [\n    0,\n    1\n  ]\n}\n'
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomically(target, {"nds": object()})
    assert target.read_text().startswith('{\n  "nds": 0.25') and list(target.parent.iterdir()) == [target]


def test_atomic_folder_creates_and_replaces(tmp_path):
    target = tmp_path / "a" / "model"
    with atomic_folder(target) as staging:
        assert staging.parent == target.parent and staging.name.startswith(".model.tmp-")
        (staging / "sub").mkdir()
        (staging / "sub" / "x.txt").write_text("1")
    assert _tree(target) == {"sub/x.txt": "1"}
    with atomic_folder(target) as staging:
        (staging / "y.txt").write_text("2")
    assert _tree(target) == {"y.txt": "2"}  # replaced, not merged into
    assert os.listdir(target.parent) == ["model"]


def test_an_exception_in_atomic_folder_keeps_the_old_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as staging:
        (staging / "x.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as staging:
        (staging / "x.txt").write_text("new")
        raise KeyboardInterrupt
    assert _tree(target) == {"x.txt": "old"} and os.listdir(tmp_path) == ["model"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, second_rename_fails):
    target, staging = tmp_path / "model", tmp_path / "staging"
    target.mkdir()
    (target / "x.txt").write_text("old")
    staging.mkdir()
    (staging / "x.txt").write_text("new")
    with pytest.raises(OSError, match="rename interrupted"):
        replace_folder(staging, target)
    calls = second_rename_fails
    assert calls[0][0] == "model" and calls[0][1].startswith(".model.old-")
    assert _tree(target) == {"x.txt": "old"} and sorted(os.listdir(tmp_path)) == ["model", "staging"]


def test_the_staging_folder_gets_the_umask_permissions(tmp_path):
    previous = os.umask(0o027)
    try:
        with atomic_folder(tmp_path / "model") as staging:
            mode = stat.S_IMODE(staging.stat().st_mode)
    finally:
        os.umask(previous)
    assert mode == 0o750
