"""Input identity: a configured input that is not a readable regular file stops `raw_csv` before anything
is written (never replaced by the generated sample), and `clean_parquet` reads the content-addressed copy
`raw_csv` landed, so a file replaced between the two steps changes neither the data nor its lineage."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sales_assets.ingest.assets import clean_parquet, raw_csv
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.resources import build_resources
from sales_tests.contract.exports import sample_rows, write_export


def run(assets, data_dir: Path, raw: Path | None, instance=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources=build_resources(data_dir=data_dir, raw_csv=raw),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def failure(result: dg.ExecuteInProcessResult, node: str) -> str:
    return result.failure_data_for_node(node).error.message


def make_missing(path: Path) -> None:
    pass


def make_directory(path: Path) -> None:
    path.mkdir()


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_loop(path: Path) -> None:
    os.symlink(path.name + ".other", path)
    os.symlink(path.name, path.parent / (path.name + ".other"))


def make_dangling(path: Path) -> None:
    os.symlink("not-there-yet.csv", path)


def make_unreadable(path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode")
    generate_sales_csv(path, rows=20)
    path.chmod(0)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (make_missing, "does not exist"),
        (make_directory, "is a directory, not a CSV file"),
        (make_fifo, r"is a FIFO \(a pipe such as <\(zcat x.gz\)\)"),
        (make_loop, "is a symlink loop"),
        (make_dangling, "is a symlink to not-there-yet.csv, which does not exist"),
        (make_unreadable, "is not readable by this user"),
    ],
    ids=["missing", "directory", "fifo", "symlink-loop", "dangling-symlink", "unreadable"],
)
def test_a_configured_input_that_is_no_readable_file_stops_before_anything_is_written(tmp_path, make, said):
    data_dir = tmp_path / "data"
    good = tmp_path / "good.csv"
    generate_sales_csv(good, rows=50)
    assert run([raw_csv, clean_parquet], data_dir, good).success
    before = tree(data_dir)
    configured = tmp_path / "incoming" / "sales.csv"
    configured.parent.mkdir()
    make(configured)
    result = run([raw_csv, clean_parquet], data_dir, configured)
    assert not result.success
    message = failure(result, "raw_csv")
    assert f"{configured}: " in message and re.search(said, message), message
    assert "SALES_RAW_CSV" in message
    # Nothing generated at the configured path, nothing of the last good run changed.
    assert not configured.is_file() or make is make_unreadable
    assert tree(data_dir) == before


def test_the_sample_is_generated_only_when_no_input_is_configured(tmp_path):
    data_dir = tmp_path / "data"
    result = run([raw_csv], data_dir, None)
    assert result.success
    assert result.asset_materializations_for_node("raw_csv")[0].metadata["generated_sample"].value is True
    assert (data_dir / "raw" / "sales_data_sample.csv").is_file()


def test_clean_parquet_reads_the_bytes_raw_csv_hashed_even_when_the_file_is_replaced(tmp_path):
    data_dir, source = tmp_path / "data", tmp_path / "sales.csv"
    rows = sample_rows(200)
    write_export(source, rows[:120])
    first_digest = hashlib.sha256(source.read_bytes()).hexdigest()
    instance = dg.DagsterInstance.ephemeral()
    landed = run([raw_csv], data_dir, source, instance).asset_materializations_for_node("raw_csv")[0]
    assert landed.tags["dagster/data_version"] == first_digest
    copy = data_dir / "raw" / "landed" / f"{first_digest}.csv"
    assert copy.read_bytes() == source.read_bytes()
    assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # immutable
    write_export(source, rows)  # the export replaced after raw_csv, before clean_parquet
    result = run([clean_parquet], data_dir, source, instance)
    assert result.success
    meta = result.asset_materializations_for_node("clean_parquet")[0].metadata
    assert meta["source_sha256_prefix"].value == first_digest[:16]
    assert meta["dagster/row_count"].value == 120
    assert (
        pl.scan_parquet(data_dir / "processed/sales_parquet", hive_partitioning=True)
        .select(pl.len())
        .collect()
        .item()
        == 120
    )


def test_clean_parquet_without_a_landed_copy_stops_and_says_what_to_run(tmp_path):
    source = write_export(tmp_path / "sales.csv", sample_rows(20))
    result = run([clean_parquet], tmp_path / "data", source)
    assert not result.success
    assert "no landed copy of the export" in failure(result, "clean_parquet")
    assert "materialise raw_csv first" in failure(result, "clean_parquet")


def test_a_landed_copy_changed_after_landing_is_refused(tmp_path):
    data_dir, source = tmp_path / "data", write_export(tmp_path / "sales.csv", sample_rows(50))
    instance = dg.DagsterInstance.ephemeral()
    assert run([raw_csv], data_dir, source, instance).success
    (copy,) = (data_dir / "raw" / "landed").glob("*.csv")
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes().replace(b"Shipped", b"Shipxed"))
    result = run([clean_parquet], data_dir, source, instance)
    assert not result.success
    assert "is missing or changed; materialise raw_csv again" in failure(result, "clean_parquet")


def test_prune_keeps_only_the_landed_copy_clean_parquet_reads(tmp_path):
    from sales_assets.ingest.source import prune_landed

    data_dir, source = tmp_path / "data", tmp_path / "sales.csv"
    instance = dg.DagsterInstance.ephemeral()
    for rows in (30, 40):
        write_export(source, sample_rows(rows))
        assert run([raw_csv], data_dir, source, instance).success
    landed = data_dir / "raw" / "landed"
    assert len(list(landed.glob("*.csv"))) == 2
    current = hashlib.sha256(source.read_bytes()).hexdigest()
    deleted = prune_landed(landed)
    assert len(deleted) == 1 and deleted[0][0].name != f"{current}.csv"
    assert [p.name for p in landed.glob("*.csv")] == [f"{current}.csv"]


def test_remembering_a_raw_csv_that_is_no_file_is_refused(tmp_path, monkeypatch):
    from sales_assets.admin import remember
    from sales_assets.ingest.source import InputPathError

    settings_file = tmp_path / "sales-settings.yaml"
    monkeypatch.setenv("SALES_SETTINGS_FILE", str(settings_file))
    settings_file.write_text("")
    with pytest.raises(InputPathError, match=r"typo\.csv: does not exist"):
        remember(None, tmp_path / "typo.csv")
    assert settings_file.read_text() == ""
    real = write_export(tmp_path / "real.csv", sample_rows(5))
    assert remember(None, real) == settings_file
    assert str(real) in settings_file.read_text()
