"""A full disk during `clean_parquet` is named as a full disk, with the folder and its free space, on a
real small tmpfs (ENOSPC from the kernel); it is not blamed on the export or its dialect settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.ingest.assets import clean_parquet, raw_csv
from sales_assets.resources import build_resources
from sales_tests.contract.exports import sample_rows, write_export


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """`tmp_path/data/processed` on a 64 KiB tmpfs; skips where mounting is not permitted."""
    folder = tmp_path / "data" / "processed"
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize(("encoding", "step"), [("utf-8", "clean_parquet"), ("cp850", "raw_csv")])
def test_a_full_disk_is_named_with_the_folder_and_free_space(small_disk, tmp_path, encoding, step):
    # UTF-8 is read in place, so the Parquet layer meets the full disk; cp850 is first copied as UTF-8
    # into processed/, so raw_csv's inspection meets it.
    source = write_export(tmp_path / "sales.csv", sample_rows(2000), encoding=encoding)
    resources = build_resources(data_dir=tmp_path / "data", raw_csv=source)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([raw_csv], resources=resources, instance=instance, raise_on_error=False)
    if step == "clean_parquet":
        assert result.success
        result = dg.materialize([clean_parquet], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node(step).error.message
    assert f"{small_disk}: the disk is full (No space left on device) while writing;" in message
    assert "MiB free of 0.1 MiB on its file system" in message
    assert "DIALECT" not in message and "check the export" not in message
    assert not (small_disk / "sales_parquet").exists()
