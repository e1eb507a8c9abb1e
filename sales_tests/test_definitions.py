"""The code location loads, and holds the asset graph of the design with its groups and upstreams."""

import dagster as dg
import pytest

from sales_assets.definitions import defs

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


def test_every_design_asset_exists_in_its_group(graph):
    for name, group in DESIGN_GROUPS.items():
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == group, name
        assert node.description, f"{name} has no docstring for the UI"


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
