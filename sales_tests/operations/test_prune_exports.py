"""`sales-admin prune` with a folder of exports: the cleaned folders of keys that are neither registered
nor the current key of a file (a file changed or removed, its key unregistered by the sensor) are deleted;
registered and current ones stay, and the warehouse still builds. Generated monthly exports, real cleaning."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sales_assets.admin import prune, prune_export_folders
from sales_assets.export_layer import partition_dir, read_manifest
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.ingest.partitions import EXPORTS_PARTITIONS
from sales_assets.io import published_versions
from sales_assets.settings import Settings
from sales_tests.ingest.test_export_folder import (
    build_warehouse,
    clean_partitions,
    month_rows,
    register,
    write_export,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> pl.DataFrame:
    path = tmp_path_factory.mktemp("sample") / "sample.csv"
    generate_sales_csv(path, rows=600)
    return pl.read_csv(path, encoding="cp850", infer_schema=False)


def test_prune_deletes_the_folders_of_superseded_export_keys_only(sample: pl.DataFrame, tmp_path: Path):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    settings = Settings(data_dir=data_dir, raw_dir=raw_dir)
    clean_dir = settings.exports_clean_dir
    write_export(month_rows(sample, 2003, 10), raw_dir / "daily [a].csv", age_days=0)
    write_export(month_rows(sample, 2003, 11), raw_dir / "gone.csv", age_days=1)
    write_export(month_rows(sample, 2003, 12), raw_dir / "kept.csv", age_days=2)
    with dg.instance_for_test() as instance:
        first = register(instance, raw_dir, set())
        assert clean_partitions(data_dir, raw_dir, first, instance).success
        daily_old, gone, kept = first
        # The daily file changes (a new key, cleaned), another is removed; as the sensor does, their old
        # keys are unregistered.
        write_export(month_rows(sample, 2003, 10).head(4), raw_dir / "daily [a].csv", age_days=3)
        (raw_dir / "gone.csv").unlink()
        [daily_new] = register(instance, raw_dir, set(first))
        assert clean_partitions(data_dir, raw_dir, [daily_new], instance).success
        for key in (daily_old, gone):
            instance.delete_dynamic_partition(EXPORTS_PARTITIONS.name, key)
        registered = instance.get_dynamic_partitions(EXPORTS_PARTITIONS.name)
        assert set(registered) == {kept, daily_new}
        old_versions = published_versions(partition_dir(clean_dir, daily_old))
        assert old_versions and all(read_manifest(clean_dir, k) for k in first)

        # Without the registered keys nothing of the exports is judged.
        assert prune(settings, registered_exports=None).export_folders_deleted == []
        pruned = prune(settings, registered_exports=registered)
        assert sorted(pruned.export_folders_deleted) == sorted([daily_old, gone])
        assert "deleted 2 superseded export folder(s)" in pruned.line()
        for key in (daily_old, gone):
            folder = partition_dir(clean_dir, key)
            assert not folder.exists() and not folder.is_symlink() and not published_versions(folder)
        assert not any(version.exists() for version in old_versions)
        assert read_manifest(clean_dir, kept) and read_manifest(clean_dir, daily_new)
        # A key that is registered but not current (not yet unregistered) stays; so does a current key
        # that is not registered yet.
        assert prune_export_folders(settings, [kept]).export_folders_deleted == []
        assert prune_export_folders(settings, [daily_new]).export_folders_deleted == []
        assert build_warehouse(data_dir, raw_dir, instance).success

    # A folder setting that is not a folder now (an unmounted share) deletes nothing.
    missing = Settings(data_dir=data_dir, raw_dir=tmp_path / "unmounted")
    assert prune_export_folders(missing, []).export_folders_deleted == []
    assert sorted(os.listdir(raw_dir)) == ["daily [a].csv", "kept.csv"]
