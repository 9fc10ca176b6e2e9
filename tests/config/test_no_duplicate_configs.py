"""No shipped config is a copy of another: a setting lives in one file, combinations are overlays."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shipped_configs() -> list[Path]:
    return sorted([*ROOT.glob("configs/**/*.yaml"), *ROOT.glob("projects/*/configs/**/*.yaml")])


def test_there_are_configs_to_compare():
    folders = {path.parent.relative_to(ROOT).as_posix() for path in shipped_configs()}
    assert {"configs/distill/pairs", "configs/distill/methods"} <= folders
    assert {"projects/BEVFormer/configs", "projects/DETR3D/configs"} <= folders


def test_no_two_config_files_have_the_same_content():
    by_digest: dict[str, list[str]] = defaultdict(list)
    for path in shipped_configs():
        by_digest[hashlib.sha256(path.read_bytes()).hexdigest()].append(path.relative_to(ROOT).as_posix())
    copies = [names for names in by_digest.values() if len(names) > 1]
    assert not copies, f"identical config files (keep one and combine overlays instead): {copies}"
