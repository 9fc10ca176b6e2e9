"""Packaging: the plug-ins in projects/ install as `fd3d_projects`, and nothing imports the bare `projects`.

A module imported under two names is executed twice, and its second run would register the detector
and its config section again in the fvcore registries; the repository root is on `sys.path` under
pytest, so `import projects...` would work here and fail only in an installed copy.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from fd3d.modeling.registry import META_ARCH_REGISTRY
from fd3d.plugins import load_projects

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("fd3d", "projects", "tools", "tests", "benchmarks")
BARE = re.compile(r"^projects(\.|$)")
BARE_IN_STRING = re.compile(r"^projects\.[A-Za-z_]")  # importlib / monkeypatch targets, entry points


def _bare_imports(path: Path) -> Iterator[str]:
    """`line: name` of every import of `projects` (or a string naming one of its modules) in `path`."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if BARE_IN_STRING.match(node.value) else []
        else:
            continue
        yield from (f"{node.lineno}: {name}" for name in names if BARE.match(name))


def test_no_source_file_imports_the_bare_projects_package():
    files = [path for folder in SOURCE_FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))]
    files.append(ROOT / "setup.py")
    assert len(files) > 100
    offenders = [f"{path.relative_to(ROOT)}:{found}" for path in files for found in _bare_imports(path)]
    assert offenders == [], "import fd3d_projects..., never projects...: " + "; ".join(offenders)


def test_plugins_load_once_under_their_installed_name():
    modules = load_projects()
    assert sorted(modules) == ["fd3d_projects.BEVFormer.bevformer", "fd3d_projects.DETR3D.detr3d"]
    assert [name for name in sys.modules if BARE.match(name)] == []
    from fd3d_projects.BEVFormer.bevformer import BEVFormer
    from fd3d_projects.DETR3D.detr3d import DETR3D

    assert META_ARCH_REGISTRY.get("BEVFormer") is BEVFormer
    assert META_ARCH_REGISTRY.get("DETR3D") is DETR3D
