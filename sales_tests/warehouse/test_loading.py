"""The warehouse load: one statement that replaces the table whole, or leaves the old one in place."""

import duckdb
import polars as pl
import pytest

from sales_assets.warehouse.loading import replace_sales_table, table_columns


def write_partitioned(root, years):
    frame = pl.DataFrame(
        {"ORDERNUMBER": list(range(len(years))), "SALES": [10.0] * len(years), "YEAR": years}
    )
    frame.write_parquet(root, partition_by="YEAR")


def test_replaces_the_table_from_hive_partitions(tmp_path):
    write_partitioned(tmp_path / "pq", [2003, 2003, 2004])
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert replace_sales_table(conn, tmp_path / "pq") == 3
        assert dict(table_columns(conn))["YEAR"] == "BIGINT"
        assert conn.execute("SELECT YEAR, count(*) FROM sales GROUP BY 1 ORDER BY 1").fetchall() == [
            (2003, 2),
            (2004, 1),
        ]


def test_a_failed_load_leaves_the_previous_table(tmp_path):
    write_partitioned(tmp_path / "pq", [2003, 2004])
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        replace_sales_table(conn, tmp_path / "pq")
        with pytest.raises(duckdb.IOException, match="No files found"):
            replace_sales_table(conn, tmp_path / "missing")
        assert conn.execute("SELECT count(*) FROM sales").fetchone()[0] == 2
