"""The code location loads, holds the asset graph of the design with its groups and upstreams, and matches
the checked-in snapshot of the graph (so any change of the graph is a visible diff), with the catalogue
attributes on every asset.

Regenerate the snapshot after an intended change of the graph:
    .venv/bin/python -m sales_tests.test_definitions
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.definitions import GROUP_OWNERS, defs
from sales_assets.settings import Settings

SNAPSHOT = Path(__file__).with_name("asset_graph_snapshot.json")
REGENERATE = "python -m sales_tests.test_definitions"

DESIGN_GROUPS = {
    "raw_csv": "ingest",
    "clean_parquet": "ingest",
    "duckdb_table": "warehouse",
    "summaries": "analytics",
    "trained_models": "ml",
    "shap_importance": "ml",
    "onnx_model": "ml",
    "ts_risk_reports": "timeseries",
}


def graph_snapshot(definitions: dg.Definitions) -> dict[str, dict]:
    """Per asset (by key): group, upstream keys, check names and kinds, all sorted."""
    graph = definitions.resolve_asset_graph()
    out: dict[str, dict] = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "group": node.group_name,
            "upstreams": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "kinds": sorted(node.kinds),
        }
    return out


def write_snapshot() -> None:
    SNAPSHOT.write_text(json.dumps(graph_snapshot(defs), indent=2) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def upstream_closure(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen, todo = set(), [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_the_graph_matches_the_checked_in_snapshot():
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    actual = graph_snapshot(defs)
    assert actual == expected, f"the asset graph changed; if intended, regenerate with `{REGENERATE}`"


def test_every_design_asset_exists_in_its_group(graph):
    for name, group in DESIGN_GROUPS.items():
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == group, name
        assert node.description, f"{name} has no docstring for the UI"


def test_every_asset_has_owners_tags_code_version_and_the_daily_freshness(graph):
    automation = Settings().automation
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == [GROUP_OWNERS[node.group_name]], key
        assert node.tags["domain"] == "sales" and node.tags["cost"] in {"cheap", "heavy"}, key
        assert node.code_version and len(node.code_version) == 12, key
        policy = node.freshness_policy
        assert policy.deadline_cron == automation.schedule_cron, key
        assert policy.timezone == automation.schedule_timezone, key


@pytest.mark.parametrize(
    ("asset", "upstream"),
    [
        ("clean_parquet", "raw_csv"),
        ("duckdb_table", "clean_parquet"),
        ("summaries", "duckdb_table"),
        ("trained_models", "duckdb_table"),
        ("ts_risk_reports", "duckdb_table"),
        ("shap_importance", "trained_models"),
        ("onnx_model", "trained_models"),
    ],
)
def test_lineage(graph, asset, upstream):
    assert dg.AssetKey(upstream) in upstream_closure(graph, dg.AssetKey(asset))


def test_only_duckdb_table_writes_the_warehouse(graph):
    writers = [
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if "duckdb" in graph.get(key).assets_def.required_resource_keys
    ]
    assert writers == ["duckdb_table"]
    assert graph.get(dg.AssetKey("duckdb_table")).pools == {"duckdb_writer"}


HEAVY_MODULES = ("mlflow", "statsmodels", "arch", "shap", "catboost")


def test_loading_the_definitions_imports_no_heavy_library():
    """Every step process, CLI call, sensor tick and the UI's code server imports the definitions: they
    import Dagster, Polars, DuckDB and pydantic, and the heavy libraries only inside the steps that use
    them. How long the import takes is measured by `bench/bench_import.py`, not asserted here."""
    probe = f"import sys, sales_assets.definitions; print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"import sales_assets.definitions imports {done.stdout.strip()}"


def test_the_readme_gives_the_counts_the_ui_shows(graph):
    """The UI's "Materialize all (N)" counts the materialisable assets; the README names N and the total."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    every, materialisable = graph.get_all_asset_keys(), graph.materializable_asset_keys
    assert f"**Materialize all ({len(materialisable)})** for the graph's {len(every)} assets" in readme
    assert not every - materialisable  # the single-CSV location has no external asset


def test_dg_check_defs_passes_from_the_repository_root():
    root = Path(__file__).resolve().parents[1]
    dg_cli = Path(sys.executable).with_name("dg")
    completed = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


if __name__ == "__main__":
    write_snapshot()
    print(f"wrote {SNAPSHOT}")
