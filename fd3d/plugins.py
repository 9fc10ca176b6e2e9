"""Discovery of detector projects: each `projects/<Name>` declares an `fd3d.projects` entry point.

Importing a project registers its meta-architecture and config section, so `build_model(cfg)` and
`load_config` find every installed detector without the core naming any of them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "fd3d.projects"
_loaded = False


def load_projects() -> list[str]:
    """Import every installed project once; returns the module names of all of them."""
    global _loaded
    modules = [entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)]
    if not _loaded:
        for module in modules:
            importlib.import_module(module)
        _loaded = True
    return modules
