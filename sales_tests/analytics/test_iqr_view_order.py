"""The IQR view's row order: ORDERNUMBER, ORDERLINENUMBER, whether the table's rows were inserted in that
order (the view is then written without a sort) or not (sorted), on generated tables of several row
groups read by two threads."""

import dagster as dg
import duckdb
import polars as pl
import pytest

from sales_assets.analytics.assets import IQR_VIEW_ORDER, iqr_filtered_sales
from sales_assets.analytics.warehouse_reader import rows_in_key_order
from sales_assets.outliers import iqr_keep_condition, iqr_steps
from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_tests.analytics.conftest import source_rows, warehouse_table

# Three of DuckDB's row groups (122,880 rows each), so the scan and the Parquet writer run in parallel.
ROWS = 2 * 122_880 + 1_000


def _key_table(conn: duckdb.DuckDBPyConnection, pairs: list[tuple[int | None, int | None]]) -> None:
    conn.execute("CREATE OR REPLACE TABLE t (ORDERNUMBER BIGINT, ORDERLINENUMBER BIGINT)")
    if pairs:
        conn.executemany("INSERT INTO t VALUES (?, ?)", pairs)


@pytest.mark.parametrize(
    ("pairs", "in_order"),
    [
        ([(1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (3, 7), (10, 2)], True),
        ([], True),
        # A descent inside a batch, across a batch boundary (3 rows a batch below), a tie, a null.
        ([(1, 1), (1, 3), (1, 2), (2, 1)], False),
        ([(1, 1), (1, 2), (2, 5), (2, 4), (3, 1)], False),
        ([(1, 1), (1, 2), (2, 1), (1, 9), (3, 1)], False),
        ([(1, 1), (1, 2), (1, 2), (2, 1)], False),
        ([(1, 1), (1, None), (2, 1)], False),
        ([(None, 1), (2, 1)], False),
    ],
)
def test_rows_in_key_order(pairs, in_order):
    with duckdb.connect() as conn:
        _key_table(conn, pairs)
        assert rows_in_key_order(conn, "t", IQR_VIEW_ORDER, batch_rows=3) is in_order


def test_rows_in_key_order_is_false_without_insertion_order():
    with duckdb.connect() as conn:
        _key_table(conn, [(1, 1), (2, 1)])
        conn.execute("SET preserve_insertion_order = false")
        assert not rows_in_key_order(conn, "t", IQR_VIEW_ORDER)


def _warehouse(data_dir, shuffled: bool) -> Settings:
    """A generated `sales` table of ROWS rows, inserted in key order or shuffled."""
    settings = Settings(data_dir=data_dir)
    sales = warehouse_table(source_rows(ROWS, seed=15))
    if shuffled:
        sales = sales.sample(fraction=1.0, shuffle=True, seed=15)
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.register("frame", sales.to_arrow())
        conn.execute("CREATE TABLE sales AS SELECT * FROM frame")
    return settings


@pytest.mark.parametrize("shuffled", [False, True], ids=["inserted-in-key-order", "shuffled"])
def test_iqr_view_is_in_key_order_as_the_sorted_query_gives_it(tmp_path, shuffled):
    settings = _warehouse(tmp_path, shuffled)
    result = dg.materialize(
        [iqr_filtered_sales],
        resources=build_resources(data_dir=tmp_path, raw_csv=settings.raw_csv_path),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    view = pl.read_parquet(settings.iqr_filtered_path)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert rows_in_key_order(conn, "sales", IQR_VIEW_ORDER) is not shuffled  # both paths are taken
        steps = iqr_steps(conn, "sales", settings.analytics.iqr_columns, settings.analytics.iqr_factor)
        keep, parameters = iqr_keep_condition(steps)
        ordered = f"SELECT * FROM sales WHERE {keep} ORDER BY ORDERNUMBER, ORDERLINENUMBER"
        expected = pl.from_arrow(conn.sql(ordered, params=parameters).to_arrow_table())
    assert 0 < view.height < ROWS
    assert view.equals(expected)
    assert view.schema == expected.schema
