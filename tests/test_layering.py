"""fd3d's packages import only their own layer or lower ones: the order README.md "Layout" states.

Read from the source with `ast` (every import, module level or not), so a new upward import fails here
with the importing file named; the one deferred upward call (a detector saving itself as a model folder)
is listed, not hidden.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# lowest first; packages on one line are one layer and may import each other's lower layers only
LAYERS = [
    ("atomic", "errors", "integrity", "plugins", "ops"),
    ("data",),
    ("config",),
    ("modeling",),
    ("evaluation",),
    ("hub",),
    ("deploy", "official"),
    ("distill",),
    ("engine",),
    ("studies",),
    ("api",),
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
# (importing file, imported package): upward imports that are deliberate, each deferred into a function
DEFERRED = {("fd3d/modeling/detector.py", "hub")}
# detectors (projects/) sit beside the model layer and may use fd3d up to its converters of official code
PROJECTS_LEVEL = LEVEL["official"]


def fd3d_imports(file: Path) -> set[str]:
    """The fd3d subpackages or modules (first component after `fd3d.`) that `file` imports."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name.split(".")[1] for name in names if name.startswith("fd3d.") and name.count("."))
    return found


def own_package(file: Path) -> str:
    parts = file.relative_to(ROOT / "fd3d").with_suffix("").parts
    return parts[0]


def test_every_package_has_a_layer():
    packages = {own_package(f) for f in (ROOT / "fd3d").rglob("*.py")} - {"__init__"}
    assert packages <= set(LEVEL), f"packages without a layer: {sorted(packages - set(LEVEL))}"


def test_no_package_imports_a_higher_layer():
    upward = []
    for file in sorted((ROOT / "fd3d").rglob("*.py")):
        package = own_package(file)
        if package == "__init__":
            continue  # the front door re-exports every layer
        relative = file.relative_to(ROOT).as_posix()
        for imported in fd3d_imports(file):
            if LEVEL[imported] > LEVEL[package] and (relative, imported) not in DEFERRED:
                upward.append(f"{relative} ({package}) imports fd3d.{imported}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_deferred_upward_imports_are_inside_functions():
    for relative, imported in DEFERRED:
        tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
        top_level = {
            node.module.split(".")[1]
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fd3d.")
        }
        assert imported not in top_level, f"{relative} imports fd3d.{imported} at module level"


def test_projects_use_fd3d_below_the_distiller():
    upward = [
        f"{file.relative_to(ROOT)} imports fd3d.{imported}"
        for file in sorted((ROOT / "projects").rglob("*.py"))
        for imported in fd3d_imports(file)
        if LEVEL[imported] > PROJECTS_LEVEL
    ]
    assert not upward, "\n".join(upward)


def test_readme_states_the_same_layers():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^Layers, lowest first: (.+)$", text, re.M)
    assert match, 'README.md "Layout" needs a line "Layers, lowest first: ..."'
    stated = [tuple(part.strip("` ").split(" / ")) for part in match.group(1).rstrip(".").split(" → ")]
    assert stated == [tuple(f"fd3d/{n}" for n in names) for names in LAYERS]
