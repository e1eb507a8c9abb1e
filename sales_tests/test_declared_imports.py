"""Every third-party module the project's code imports comes from a distribution pyproject.toml declares (in
`dependencies` or an extra): an undeclared one works only while something else happens to pull it in."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project's own top-level modules and folders (the dashboard's page imports its sibling by name, the
# benchmarks theirs).
# `quickstart`: scripts/quickstart.py, which bench scripts import for its one definition of the quick settings.
LOCAL = {
    "sales_assets",
    "sales_serving",
    "sales_tests",
    "dashboard",
    "bench",
    "scripts",
    "sales_queries",
    "quickstart",
}
SCANNED = ("sales_assets", "sales_serving", "sales_tests", "dashboard", "bench", "scripts")


def _imported_modules() -> dict[str, set[str]]:
    """Top-level module -> files importing it (absolute imports only), over the project's sources."""
    found: dict[str, set[str]] = {}
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            local = {p.stem for p in path.parent.glob("*.py")}  # a script's sibling modules
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in LOCAL and top not in local:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return {_normalised(re.split(r"[<>=!~\[; ]", requirement)[0]) for requirement in requirements}


def test_every_imported_distribution_is_declared():
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {
        module: sorted(files)
        for module, files in _imported_modules().items()
        if not any(_normalised(d) in declared for d in distributions.get(module, [module]))
    }
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"
