"""Export names whose escaped key would not fit the file system's name limit: the partition's folder gets a
short, stable, collision-free digest name, the manifest keeps the full name, and the folder mode cleans,
builds the warehouse and prunes as with short names."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sales_assets.admin import prune_export_folders
from sales_assets.export_layer import (
    DIGEST_FOLDER_PREFIX,
    NAME_MAX,
    PUBLISHED_NAME_OVERHEAD,
    export_key,
    partition_dir,
    partition_folder_name,
    read_manifest,
)
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.settings import Settings
from sales_tests.ingest.test_export_folder import (
    build_warehouse,
    clean_partitions,
    month_rows,
    register,
    write_export,
)

# 242 bytes: 119 Cyrillic letters (two UTF-8 bytes each) and 4 Latin ones; 718 bytes as a quoted folder name.
LONG_STEM = "продажи" * 17 + "abcd"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> pl.DataFrame:
    path = tmp_path_factory.mktemp("sample") / "sample.csv"
    generate_sales_csv(path, rows=600)
    return pl.read_csv(path, encoding="cp850", infer_schema=False)


def test_a_key_too_long_to_quote_gets_a_short_stable_distinct_digest_name() -> None:
    assert len(LONG_STEM.encode()) == 242
    key = export_key(f"{LONG_STEM}.csv", "ab" * 32)
    name = partition_folder_name(key)
    assert name.startswith(DIGEST_FOLDER_PREFIX) and len(name) + PUBLISHED_NAME_OVERHEAD <= NAME_MAX
    assert partition_folder_name(key) == name
    others = {partition_folder_name(export_key(f"{LONG_STEM}{i}.csv", "ab" * 32)) for i in range(50)}
    assert len(others) == 50 and name not in others
    # The same name with other content is another key, so another folder.
    assert partition_folder_name(export_key(f"{LONG_STEM}.csv", "cd" * 32)) != name
    # Short keys keep their readable quoted name.
    assert partition_folder_name("2005-03.csv@1f0c2a3b4c5d") == "2005-03.csv@1f0c2a3b4c5d"


def test_the_folder_mode_cleans_builds_and_prunes_a_long_cyrillic_name(sample: pl.DataFrame, tmp_path: Path):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    settings = Settings(data_dir=data_dir, raw_dir=raw_dir)
    write_export(month_rows(sample, 2003, 10), raw_dir / f"{LONG_STEM}.csv", age_days=0)
    write_export(month_rows(sample, 2003, 11), raw_dir / "short.csv", age_days=1)
    with dg.instance_for_test() as instance:
        keys = register(instance, raw_dir, set())
        assert clean_partitions(data_dir, raw_dir, keys, instance).success
        long_key = next(key for key in keys if key.startswith(LONG_STEM))
        folder = partition_dir(settings.exports_clean_dir, long_key)
        assert folder.name.startswith(DIGEST_FOLDER_PREFIX) and folder.is_dir()
        manifest = read_manifest(settings.exports_clean_dir, long_key)
        assert manifest is not None and manifest.name == f"{LONG_STEM}.csv" and manifest.key == long_key
        assert build_warehouse(data_dir, raw_dir, instance).success
        assert build_warehouse(data_dir, raw_dir, instance).success  # and again on the next refresh
        assert prune_export_folders(settings, keys).export_folders_deleted == []
        assert folder.is_dir()
