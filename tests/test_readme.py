"""README.md is the front door: every relative link and #anchor in it (and in the projects' READMEs)
resolves, and every tool in tools/ is documented there and prints --help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("projects/*/README.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens (code fences skipped)."""
    found, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_anchor_rule_matches_github_on_known_headings():
    assert anchors("## Demo: the first ten minutes\n### Streaming with Hugging Face `datasets`\n") == {
        "demo-the-first-ten-minutes",
        "streaming-with-hugging-face-datasets",
    }


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(readme):
    text = readme.read_text()
    broken = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (readme.parent / path).resolve() if path else readme
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(target)
    assert not broken, f"{readme.name}: links that do not resolve: {broken}"


TOOLS = sorted(path.name for path in (ROOT / "tools").glob("*.py"))


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_is_documented_and_prints_help(tool):
    assert f"tools/{tool}" in (ROOT / "README.md").read_text(), f"tools/{tool} is not in README.md"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / tool), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


# a repository path named in a README: `fd3d/...`, `tools/x.py`, `projects/...`, ... (outputs go to work/)
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:fd3d|tools|projects|configs|benchmarks|tests)/[\w./<>*-]*[\w*>])(\.?\{)?"
)
# files the "Add a distillation method" walk-through has the reader write
WRITTEN_BY_THE_READER = {"fd3d/distill/l1.py", "configs/distill/methods/l1.yaml"}


def named_paths(markdown: str) -> set[str]:
    """Repository paths a README names; templated (`<run>`), globbed and brace-expanded ones skipped."""
    return {p for p, brace in REPO_PATH.findall(markdown) if not brace and not any(c in p for c in "<>*")}


def test_named_paths_rule_on_a_known_line():
    text = (
        "see `fd3d/hub/card.py`, run `python tools/demo.py`, in benchmarks/results/<study>/x.md, a.{md,json}"
    )
    assert named_paths(text + " `configs/official_{tiny,small}.yaml` fd3d/studies/x.{md,png}.") == {
        "fd3d/hub/card.py",
        "tools/demo.py",
    }


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_readme_names_exists(readme):
    def exists(path: str) -> bool:
        return (ROOT / path).exists() or (ROOT / f"{path}.py").exists()  # a module, named without .py

    named = named_paths(readme.read_text()) - WRITTEN_BY_THE_READER
    missing = sorted(p for p in named if not exists(p.rstrip(".")))
    assert not missing, f"{readme.name} names paths that do not exist: {missing}"


def test_the_python_api_snippet_prints_what_the_readme_shows(tmp_path):
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == shown
