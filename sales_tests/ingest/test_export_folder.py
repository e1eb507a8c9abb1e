"""A folder of exports (`SALES_RAW_DIR`): each file a partition of `clean_export`, cleaned once with the
single CSV's cleaning; `duckdb_table` keeps one row per order line, the newest export winning.

Inputs are generated (`generate_sales_csv`) and split into monthly files; a correction file changes ten
existing order lines and adds five. Real Parquet, a real DuckDB file, a real Dagster instance."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from sales_assets.export_layer import export_key, partition_dir, read_manifest, scan_exports
from sales_assets.ingest.defs import clean_export
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.ingest.partitions import EXPORTS_PARTITIONS
from sales_assets.io import sha256_file
from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_assets.timeseries.partitions import partition_range_tags
from sales_assets.warehouse.defs import duckdb_table

MONTHS = [(2003, 10), (2003, 11), (2003, 12)]
NEW_LINES_MONTH = (2004, 1)
DEALSIZE = (3000.0, 7000.0)
# One modification time per file, a day apart, so "newest" is the order the files were written in.
BASE_MTIME_NS = 1_700_000_000 * 10**9
DAY_NS = 86_400 * 10**9


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """A generated export read as text (every cell as written)."""
    path = tmp_path_factory.mktemp("sample") / "sample.csv"
    generate_sales_csv(path, rows=800)
    return pl.read_csv(path, encoding="cp850", infer_schema=False)


def month_rows(sample: pl.DataFrame, year: int, month: int) -> pl.DataFrame:
    return sample.filter((pl.col("YEAR_ID") == str(year)) & (pl.col("MONTH_ID") == str(month)))


def write_export(frame: pl.DataFrame, path: Path, age_days: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    mtime = BASE_MTIME_NS + age_days * DAY_NS
    os.utime(path, ns=(mtime, mtime))
    return path


def corrected(lines: pl.DataFrame) -> pl.DataFrame:
    """The same order lines with one more unit each: QUANTITYORDERED, SALES and DEALSIZE change together
    (lines priced below the cap, where SALES = QUANTITYORDERED x PRICEEACH)."""
    rows = []
    for row in lines.iter_rows(named=True):
        quantity = int(row["QUANTITYORDERED"]) + 1
        sales = round(quantity * float(row["PRICEEACH"]), 2)
        size = "Small" if sales < DEALSIZE[0] else "Medium" if sales < DEALSIZE[1] else "Large"
        rows.append({**row, "QUANTITYORDERED": str(quantity), "SALES": f"{sales:.2f}", "DEALSIZE": size})
    return pl.DataFrame(rows, schema=lines.schema)


def sales_total(frame: pl.DataFrame) -> float:
    return round(frame["SALES"].cast(pl.Float64).sum(), 2)


def clean_partitions(data_dir: Path, raw_dir: Path, keys: list[str], instance: dg.DagsterInstance):
    """One run of `clean_export` over `keys` (registered last, in this order), as the sensor asks."""
    return dg.materialize(
        [clean_export],
        resources=build_resources(data_dir=data_dir, raw_dir=raw_dir),
        instance=instance,
        tags=partition_range_tags(keys[0], keys[-1]),
    )


def build_warehouse(data_dir: Path, raw_dir: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [duckdb_table],
        resources=build_resources(data_dir=data_dir, raw_dir=raw_dir),
        instance=instance,
    )


def cleaned_keys(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("clean_export")
    )


def warehouse_totals(data_dir: Path) -> tuple[int, float, int]:
    with duckdb.connect(str(Settings(data_dir=data_dir).duckdb_path), read_only=True) as conn:
        rows, total, lines = conn.execute(
            "SELECT count(*), round(sum(SALES), 2), count(DISTINCT (ORDERNUMBER, ORDERLINENUMBER)) FROM sales"
        ).fetchone()
    return rows, total, lines


def warehouse_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("duckdb_table")
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _count(cell: str) -> int:
    """A count cell of a metadata table (`2,823`, as `formatting.count` writes it) as a number."""
    return int(cell.replace(",", ""))


def partition_rows(metadata: dict) -> dict[str, tuple[int, int]]:
    """(rows in, rows kept) per partition key, from `duckdb_table`'s `rows_by_partition` table."""
    return {
        r.data["partition"]: (_count(r.data["rows_in"]), _count(r.data["rows_kept"]))
        for r in metadata["rows_by_partition"].records
    }


def register(instance: dg.DagsterInstance, raw_dir: Path, known: set[str]) -> list[str]:
    """The keys of the exports in `raw_dir` not in `known`, registered (oldest first)."""
    exports = sorted(scan_exports(raw_dir, "*.csv"), key=lambda e: (e.mtime_ns, e.name))
    new = [e.key for e in exports if e.key not in known]
    instance.add_dynamic_partitions(EXPORTS_PARTITIONS.name, new)
    return new


def test_three_months_then_a_correction_newest_wins_and_only_the_new_partition_is_cleaned(
    sample: pl.DataFrame, tmp_path: Path
):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    months = [month_rows(sample, *month) for month in MONTHS]
    assert all(frame.height >= 10 for frame in months)
    for age, (frame, (year, month)) in enumerate(zip(months, MONTHS, strict=True)):
        write_export(frame, raw_dir / f"sales_{year}-{month:02d}.csv", age)

    with dg.instance_for_test() as instance:
        first = register(instance, raw_dir, set())
        assert len(first) == 3
        result = clean_partitions(data_dir, raw_dir, first, instance)
        assert result.success
        assert cleaned_keys(result) == sorted(first)
        warehouse = build_warehouse(data_dir, raw_dir, instance)
        assert warehouse.success
        everything = pl.concat(months)
        assert warehouse_totals(data_dir)[:2] == (everything.height, sales_total(everything))
        assert warehouse_metadata(warehouse)["replaced_lines"] == 0

        # The correction: ten existing lines (priced below the cap) with new values, five new lines.
        november = months[1].filter(pl.col("PRICEEACH").cast(pl.Float64) < 100).head(10)
        assert november.height == 10
        new_lines = month_rows(sample, *NEW_LINES_MONTH).head(5)
        assert new_lines.height == 5
        correction = pl.concat([corrected(november), new_lines])
        write_export(correction, raw_dir / "sales_correction.csv", age_days=10)
        versions_before = {
            key: os.readlink(partition_dir(Settings(data_dir=data_dir).exports_clean_dir, key))
            for key in first
        }

        new = register(instance, raw_dir, set(first))
        assert new == [export_key("sales_correction.csv", sha256_file(raw_dir / "sales_correction.csv"))]
        again = clean_partitions(data_dir, raw_dir, new, instance)
        assert again.success
        # Only the correction was cleaned: one materialisation, and the earlier folders are the same versions.
        assert cleaned_keys(again) == new
        clean_dir = Settings(data_dir=data_dir).exports_clean_dir
        assert {key: os.readlink(partition_dir(clean_dir, key)) for key in first} == versions_before
        warehouse = build_warehouse(data_dir, raw_dir, instance)
        assert warehouse.success

    changed_keys = set(zip(november["ORDERNUMBER"], november["ORDERLINENUMBER"], strict=True))
    kept_original = everything.filter(
        ~pl.struct("ORDERNUMBER", "ORDERLINENUMBER").map_elements(
            lambda line: (line["ORDERNUMBER"], line["ORDERLINENUMBER"]) in changed_keys,
            return_dtype=pl.Boolean,
        )
    )
    expected = pl.concat([kept_original, correction])
    rows, total, lines = warehouse_totals(data_dir)
    assert rows == everything.height + 5 == expected.height
    assert lines == rows
    assert total == sales_total(expected)
    assert total == pytest.approx(
        sales_total(everything) - sales_total(november) + sales_total(correction), abs=0.005
    )
    metadata = warehouse_metadata(warehouse)
    assert metadata["replaced_lines"] == 10
    assert metadata["partitions_used"] == 4
    assert metadata["dagster/row_count"] == rows
    # The correction is the newest export: every one of its rows is kept, 10 November rows are not.
    by_partition = partition_rows(metadata)
    assert list(by_partition) == [*first, *new]  # oldest first
    assert by_partition[new[0]] == (15, 15)
    november_key = next(key for key in first if "2003-11" in key)
    assert by_partition[november_key] == (months[1].height, months[1].height - 10)


def test_a_changed_file_is_a_new_key_and_the_old_key_is_not_used(sample: pl.DataFrame, tmp_path: Path):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    october, november = (month_rows(sample, *month) for month in MONTHS[:2])
    write_export(october, raw_dir / "daily.csv", age_days=0)
    write_export(november, raw_dir / "other.csv", age_days=1)
    with dg.instance_for_test() as instance:
        first = register(instance, raw_dir, set())
        assert clean_partitions(data_dir, raw_dir, first, instance).success
        old_key = next(key for key in first if key.startswith("daily.csv@"))

        # Same name, new content (fewer lines): a new key; cleaned alone; the old key's rows are gone.
        shorter = october.head(3)
        write_export(shorter, raw_dir / "daily.csv", age_days=2)
        new = register(instance, raw_dir, set(first))
        assert len(new) == 1 and new[0].startswith("daily.csv@") and new[0] != old_key
        # The warehouse refuses to run while the file's current content is not cleaned.
        refused = dg.materialize(
            [duckdb_table],
            resources=build_resources(data_dir=data_dir, raw_dir=raw_dir),
            instance=instance,
            raise_on_error=False,
        )
        assert not refused.success
        cleaned = clean_partitions(data_dir, raw_dir, new, instance)
        assert cleaned_keys(cleaned) == new
        warehouse = build_warehouse(data_dir, raw_dir, instance)
    clean_dir = Settings(data_dir=data_dir).exports_clean_dir
    assert read_manifest(clean_dir, old_key) is not None  # still on disk, not read
    expected = pl.concat([shorter, november])
    assert warehouse_totals(data_dir) == (expected.height, sales_total(expected), expected.height)
    metadata = warehouse_metadata(warehouse)
    assert metadata["partitions_used"] == 2 and old_key not in partition_rows(metadata)
    assert metadata["replaced_lines"] == 0


def test_missing_values_before_cleaning_sum_the_exports_in_the_folder(sample: pl.DataFrame, tmp_path: Path):
    from sales_assets.analytics.defs import missing_value_report

    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    months = [month_rows(sample, *month) for month in MONTHS[:2]]
    for age, frame in enumerate(months):
        write_export(frame, raw_dir / f"m{age}.csv", age_days=age)
    with dg.instance_for_test() as instance:
        keys = register(instance, raw_dir, set())
        assert clean_partitions(data_dir, raw_dir, keys, instance).success
        result = dg.materialize(
            [duckdb_table, missing_value_report],
            resources=build_resources(data_dir=data_dir, raw_dir=raw_dir),
            instance=instance,
        )
    assert result.success
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("missing_value_report")
    ]
    metadata = event.materialization.metadata
    rows = sum(frame.height for frame in months)
    assert metadata["rows_before"].value == metadata["rows_after"].value == f"{rows:,}"  # number_metadata
    blank_states = sum(frame["STATE"].null_count() for frame in months)
    assert blank_states > 0
    # STATE is blank in the exports and filled with `Unknown` by cleaning.
    report = pl.read_parquet(Settings(data_dir=data_dir).summary_dir / "missing_values.parquet")
    assert report.filter(pl.col("column") == "STATE")["missing_before"].item() == blank_states


def test_a_registered_key_whose_file_changed_fails_to_clean_naming_it(sample: pl.DataFrame, tmp_path: Path):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    write_export(month_rows(sample, *MONTHS[0]), raw_dir / "a.csv", age_days=0)
    with dg.instance_for_test() as instance:
        [key] = register(instance, raw_dir, set())
        write_export(month_rows(sample, *MONTHS[1]), raw_dir / "a.csv", age_days=1)
        result = dg.materialize(
            [clean_export],
            resources=build_resources(data_dir=data_dir, raw_dir=raw_dir),
            instance=instance,
            partition_key=key,
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert key in failure.step_failure_data.error.message and "changed since it was registered" in (
        failure.step_failure_data.error.message
    )
    assert read_manifest(Settings(data_dir=data_dir).exports_clean_dir, key) is None


AWKWARD_NAMES = [
    "sales...2003-10.csv",
    "sales 2003 11.csv",
    "Berguvsvägen, Luleå [rev 2].csv",
    "50% (final).csv",
    "tab\there..csv",
]


def test_key_names_are_valid_partition_keys_readable_reversible_and_distinct():
    from urllib.parse import unquote

    from dagster._core.definitions.partitions.utils.base import INVALID_PARTITION_SUBSTRINGS

    from sales_assets.export_layer import key_name, split_key

    digest = "ab" * 32
    plain = ["2005-03.csv", "sales_2003-10.csv", "sub/folder/x.csv", "v1.2.csv", "a@b.csv"]
    assert [key_name(name) for name in plain] == plain  # plain names stay as they are
    # Names that a plain replacement would merge: every one keeps its own key.
    near = [
        "a b.csv",
        "a_b.csv",
        "a%20b.csv",
        "a..b.csv",
        "a.b.csv",
        "a,b.csv",
        "a[b].csv",
        "ä.csv",
        "a\u0308.csv",
    ]
    names = AWKWARD_NAMES + near
    keys = [export_key(name, digest) for name in names]
    assert len(set(keys)) == len(names)
    for name, key in zip(names, keys, strict=True):
        escaped, prefix = split_key(key)
        assert prefix == digest[:12] and unquote(escaped) == name
        assert not any(bad in key for bad in INVALID_PARTITION_SUBSTRINGS), key
        assert not any(c in escaped.replace("%", "") for c in " ,[]\t")
    # Dagster's own validation (static definitions check every key) accepts them all.
    dg.StaticPartitionsDefinition(keys)
    assert export_key("Berguvsvägen, Luleå [rev 2].csv", digest).startswith(
        "Berguvsvägen%2C%20Luleå%20%5Brev%202%5D.csv@"
    )
    assert export_key("sales...2003-10.csv", digest).startswith("sales.%2E%2E2003-10.csv@")


def test_awkward_file_names_are_registered_cleaned_and_loaded(sample: pl.DataFrame, tmp_path: Path):
    """The sensor's registration, one cleaning run over the range of new keys and the warehouse, on files
    whose names hold dots, spaces, unicode, brackets, commas, `%` and a tab."""
    from sales_assets.automation import register_exports

    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    months = [*MONTHS, NEW_LINES_MONTH, (2004, 2)]
    frames = [month_rows(sample, *month) for month in months]
    assert all(frame.height for frame in frames)
    for age, (frame, name) in enumerate(zip(frames, AWKWARD_NAMES, strict=True)):
        write_export(frame, raw_dir / name, age_days=age)
    exports = scan_exports(raw_dir, "*.csv")
    assert sorted(e.name for e in exports) == sorted(AWKWARD_NAMES)
    with dg.instance_for_test() as instance:
        registration = register_exports(exports, [], "test")
        keys = registration.new_keys
        assert len(set(keys)) == len(AWKWARD_NAMES)
        instance.add_dynamic_partitions(EXPORTS_PARTITIONS.name, keys)
        result = clean_partitions(data_dir, raw_dir, keys, instance)
        assert result.success and cleaned_keys(result) == sorted(keys)
        warehouse = build_warehouse(data_dir, raw_dir, instance)
        assert warehouse.success
    clean_dir = Settings(data_dir=data_dir).exports_clean_dir
    # The manifests keep the real file names (they rank the exports), the keys their escaped form.
    assert sorted(read_manifest(clean_dir, key).name for key in keys) == sorted(AWKWARD_NAMES)
    everything = pl.concat(frames)
    assert warehouse_totals(data_dir) == (everything.height, sales_total(everything), everything.height)
    assert list(partition_rows(warehouse_metadata(warehouse))) == keys  # oldest first, as registered
