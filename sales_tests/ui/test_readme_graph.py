"""The README's edge list is the graph the code location defines: regenerate it with
`scripts/asset_edges.py` when an asset or a dependency changes."""

from __future__ import annotations

import importlib.util
import re

from sales_assets.definitions import defs
from sales_tests.ui.browser import PROJECT_ROOT

BLOCK = re.compile(r"<!-- asset-edges -->\s*```text\n(.*?)```\s*<!-- /asset-edges -->", re.DOTALL)


def load_edges_script():
    spec = importlib.util.spec_from_file_location("asset_edges", PROJECT_ROOT / "scripts" / "asset_edges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_lists_every_edge_of_the_definitions():
    edges = load_edges_script().asset_edges(defs)
    assert ("raw_csv", "missing_value_report") in edges
    match = BLOCK.search((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has no <!-- asset-edges --> block with a ```text list inside"
    listed = match.group(1).strip().splitlines()
    expected = [f"{upstream} -> {downstream}" for upstream, downstream in edges]
    assert listed == expected, (
        "README's edge list is out of date; replace the block with `.venv/bin/python scripts/asset_edges.py`"
    )
