"""The training data: a repeatable DuckDB sample of at most max_training_rows in a fixed order, and lineage
from the digests of the Parquet files and the raw export."""

from pathlib import Path

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
    landed_dir = tmp_path / "raw" / "landed"

    before = data_lineage(layer, landed_dir)
    part.write_bytes(b"two")
    changed = data_lineage(layer, landed_dir)
    part.rename(layer / "YEAR=2003" / "part-1.parquet")
    renamed = data_lineage(layer, landed_dir)

    assert before["parquet_files"] == 1 and len(before["data_sha256"]) == 64
    assert len({before["data_sha256"], changed["data_sha256"], renamed["data_sha256"]}) == 3
    # Nothing landed: no raw digest is claimed (the configured file is not hashed in its place).
    assert before["raw_sha256"] is None and before["raw_path"] is None


def test_lineage_names_the_landed_bytes_not_the_file_now(tmp_path):
    """The raw digest is the landed copy's, so replacing the configured file after `raw_csv` does not
    change what the lineage names."""
    from sales_assets.ingest.source import land, make_current
    from sales_assets.io import sha256_file

    layer = tmp_path / "sales_parquet"
    layer.mkdir()
    raw = tmp_path / "raw.csv"
    raw.write_text("a,b\n1,2\n", encoding="utf-8")
    landed_dir = tmp_path / "raw" / "landed"
    make_current(land(raw, landed_dir))
    read = sha256_file(raw)
    raw.write_text("a,b\n3,4\n", encoding="utf-8")  # the file replaced after raw_csv landed it

    lineage = data_lineage(layer, landed_dir)
    assert lineage["raw_sha256"] == read != sha256_file(raw)
    assert lineage["raw_path"] == str(raw) and lineage["raw_copy"].endswith(f"{read}.csv")


# ---- a folder of exports: the digest of the export partitions the warehouse used ---------------------


@pytest.fixture(scope="module")
def export_sample(tmp_path_factory):
    import polars as pl

    from sales_assets.ingest.generator import generate_sales_csv

    path = tmp_path_factory.mktemp("sample") / "sample.csv"
    generate_sales_csv(path, rows=600)
    return pl.read_csv(path, encoding="cp850", infer_schema=False)


def _folder_lineage(sample, root, months: list[tuple[int, int]], *, rebuild: bool = False) -> dict:
    """Write one monthly export per month into `root/exports`, clean and load them as the sensor and
    `refresh_all` do, and return the lineage of the table built (read from the DuckDB file)."""
    from sales_assets.ml.data import exports_lineage
    from sales_assets.warehouse.loading import exports_used

    settings, keys = _folder_warehouse(sample, root, months, rebuild=rebuild)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        used = exports_used(conn)
    assert [key for key, _ in used] == keys  # oldest first, the warehouse's order
    return exports_lineage(used, settings.exports_clean_dir, settings.raw_dir_path)


def _folder_warehouse(sample, root, months: list[tuple[int, int]], *, rebuild: bool = False):
    """(settings, keys oldest first) of a folder of monthly exports cleaned and loaded into the warehouse."""
    import dagster as dg

    from sales_assets.settings import Settings
    from sales_tests.ingest.test_export_folder import (
        build_warehouse,
        clean_partitions,
        month_rows,
        register,
        write_export,
    )

    raw_dir, data_dir = root / "exports", root / "data"
    for age, (year, month) in enumerate(months):
        write_export(month_rows(sample, year, month), raw_dir / f"{year}-{month:02d}.csv", age_days=age)
    with dg.instance_for_test() as instance:
        keys = register(instance, raw_dir, set())
        assert clean_partitions(data_dir, raw_dir, keys, instance).success
        for _ in range(2 if rebuild else 1):
            assert build_warehouse(data_dir, raw_dir, instance).success
    return Settings(data_dir=data_dir, raw_dir=raw_dir), keys


def test_folder_lineage_digests_the_exports_the_table_was_built_from(export_sample, tmp_path):
    first = _folder_lineage(export_sample, tmp_path / "a", [(2003, 10), (2003, 11)])
    same = _folder_lineage(export_sample, tmp_path / "b", [(2003, 10), (2003, 11)], rebuild=True)
    other = _folder_lineage(export_sample, tmp_path / "c", [(2003, 10), (2003, 12)])
    more = _folder_lineage(export_sample, tmp_path / "d", [(2003, 10), (2003, 11), (2003, 12)])

    assert len(first["data_sha256"]) == 64 and first["raw_sha256"] is None
    assert first["exports"] == same["exports"] and len(first["exports"]) == 2
    assert first["parquet_files"] >= 2 and first["raw_path"].endswith("exports")
    # The same exports give the same digest (another data folder, the table built twice); other exports
    # (another month, one more file) another.
    assert first["data_sha256"] == same["data_sha256"]
    assert len({first["data_sha256"], other["data_sha256"], more["data_sha256"]}) == 3


def test_folder_lineage_follows_content_and_order():
    from sales_assets.ml.data import exports_lineage

    exports = [("a.csv@111111111111", "1" * 64), ("b.csv@222222222222", "2" * 64)]

    def digest(used):
        return exports_lineage(used, Path("/nowhere"), None)["data_sha256"]

    assert digest(exports) == digest(list(exports))
    assert digest(exports) != digest(exports[::-1])  # another "newest" is another table
    assert digest(exports) != digest([exports[0], ("b.csv@222222222222", "3" * 64)])
    assert digest(exports) != digest(exports[:1])
    assert exports_lineage([], Path("/nowhere"), None)["parquet_files"] == 0


def test_training_on_a_folder_of_exports_records_their_digest(export_sample, tmp_path, monkeypatch):
    """`trained_models` in folder mode: the metrics file's lineage is the exports' digest, with their keys,
    and no raw file digest."""
    import json

    import dagster as dg

    from sales_assets.ml.assets import trained_models
    from sales_assets.ml.data import exports_lineage
    from sales_assets.resources import build_resources
    from sales_assets.warehouse.loading import exports_used

    settings, keys = _folder_warehouse(export_sample, tmp_path, [(2003, 10), (2003, 11), (2004, 1)])
    for name, value in {
        "SALES_ML__CV_FOLDS": "2",
        "SALES_ML__CV_REPEATS": "1",
        "SALES_ML__MODELS": '["linear_regression", "capped_price_residual"]',
    }.items():
        monkeypatch.setenv(name, value)
    resources = build_resources(data_dir=settings.root, raw_dir=settings.raw_dir_path)
    assert dg.materialize(
        [trained_models], resources=resources, instance=dg.DagsterInstance.ephemeral()
    ).success
    metrics = json.loads((settings.metrics_dir / "sales_regression_metrics.json").read_text())
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        expected = exports_lineage(exports_used(conn), settings.exports_clean_dir, settings.raw_dir_path)
    lineage = metrics["lineage"]
    assert lineage["data_sha256"] == expected["data_sha256"] and lineage["exports"] == keys
    assert lineage["raw_sha256"] is None and lineage["raw_path"] == str(settings.raw_dir_path)
