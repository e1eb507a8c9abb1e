"""The training data: a repeatable DuckDB sample of at most max_training_rows in a fixed order, and lineage
from the digests of the Parquet files and the raw export."""

import duckdb
import numpy as np
import pytest
from dagster_duckdb import DuckDBResource

from sales_assets.ml.data import data_lineage, read_training_sample


@pytest.fixture
def database(tmp_path) -> DuckDBResource:
    path = tmp_path / "sales.duckdb"
    rng = np.random.default_rng(0)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "CREATE TABLE sales AS SELECT (10000 + i // 5) AS ORDERNUMBER, (i % 5) + 1 AS ORDERLINENUMBER, "
            "'S' || (i % 7) AS PRODUCTCODE, i * 1.5 AS SALES FROM range(5000) t(i)"
        )
        conn.execute("UPDATE sales SET SALES = SALES + ?", [float(rng.normal())])
    return DuckDBResource(database=str(path), connection_config={"access_mode": "READ_ONLY"})


def test_a_large_table_is_sampled_repeatably_inside_duckdb(database):
    first = read_training_sample(database, 700, seed=42)
    again = read_training_sample(database, 700, seed=42)
    other = read_training_sample(database, 700, seed=7)

    assert first.sampled and first.table_rows == 5000 and len(first.frame) == 700
    assert "USING SAMPLE reservoir(700 ROWS) REPEATABLE (42)" in first.sample_sql
    assert first.frame.equals(again.frame)
    assert not first.frame["SALES"].equals(other.frame["SALES"])
    ordered = first.frame.sort_values(["ORDERNUMBER", "ORDERLINENUMBER", "PRODUCTCODE"], ignore_index=True)
    assert first.frame.equals(ordered)


def test_a_table_within_the_limit_is_read_whole(database):
    data = read_training_sample(database, 5000, seed=42)
    assert not data.sampled and len(data.frame) == 5000 and "SAMPLE" not in data.sample_sql
    with pytest.raises(ValueError, match="max_training_rows"):
        read_training_sample(database, 0, seed=42)


def test_lineage_digest_follows_the_files(tmp_path):
    layer = tmp_path / "sales_parquet"
    (layer / "YEAR=2003").mkdir(parents=True)
    part = layer / "YEAR=2003" / "part-0.parquet"
    part.write_bytes(b"one")
    raw = tmp_path / "raw.csv"
    raw.write_text("a,b\n1,2\n", encoding="utf-8")

    before = data_lineage(layer, raw)
    part.write_bytes(b"two")
    changed = data_lineage(layer, raw)
    part.rename(layer / "YEAR=2003" / "part-1.parquet")
    renamed = data_lineage(layer, raw)

    assert before["parquet_files"] == 1 and len(before["data_sha256"]) == 64 and before["raw_sha256"]
    assert len({before["data_sha256"], changed["data_sha256"], renamed["data_sha256"]}) == 3
    assert data_lineage(layer, tmp_path / "absent.csv")["raw_sha256"] is None
