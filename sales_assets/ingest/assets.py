"""Assets of group `ingest`: the raw export (`raw_csv`) and its cleaned, partitioned Parquet layer
(`clean_parquet`), with the clean layer's checks. Wiring only; the rules live in the modules beside it.

Beside them, for a folder of exports (`SALES_RAW_DIR`), two assets partitioned by export
(`EXPORTS_PARTITIONS`, key `<name>@<sha256[:12]>`): `raw_export`, an external asset whose partitions
the sensor `raw_export_files` (or the daily schedule in folder mode) records when it registers a file,
and `clean_export`, each partition cleaned once by the same `clean_to_parquet` (same reader, gates and
quarantine) into its own folder of `processed/sales_exports/`. The graph is the same in both modes;
`duckdb_table` reads the source the settings name (`sales_assets.export_layer` has the layout).
"""

import contextlib
import errno
import shutil
import tempfile
import time
import traceback
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from sales_assets.export_layer import (
    DATA_FOLDER,
    REJECTS_FILE,
    ExportManifest,
    export_paths,
    key_name,
    partition_dir,
    split_key,
)
from sales_assets.ingest.cleaning import (
    CleanStats,
    EmptyInputError,
    Inspected,
    KeyConflictError,
    blocking_problems,
    clean_to_parquet,
    inspect_export,
)
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.ingest.partitions import EXPORTS_PARTITIONS
from sales_assets.ingest.quality import (
    BLOCKING_CHECKS,
    CLEAN_PARQUET_CHECK_SPECS,
    check_results,
    clean_layer_findings,
)
from sales_assets.ingest.source import (
    InputPathError,
    Landed,
    check_input_file,
    current_landed,
    land,
    make_current,
)
from sales_assets.io import atomic_path, sha256_file, staged_directory
from sales_assets.metadata import key_value_table, path_metadata, table_metadata, timed
from sales_assets.resources import SalesSettingsResource
from sales_assets.settings import Settings
from sales_serving.contract.export import ExportError

GROUP = "ingest"
SETTINGS_HINT = "check the export and the SALES_INGEST__READING__DIALECT__* settings"


# A write that fails with less than this free on its file system failed for want of space, whatever the
# writer said (Polars' Parquet sink has been seen to leave truncated files and fail later, on reading them).
FULL_BELOW_BYTES = 1 << 20


class DiskFullError(OSError):
    """A write failed on a full file system; the message names the folder and its free space."""


def _says_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return "No space left on device" in str(error) or "os error 28" in str(error)


@contextmanager
def naming_a_full_disk(folder: Path) -> Iterator[None]:
    """Turn any error of the block into DiskFullError when it says ENOSPC or the file system of `folder`
    has less than FULL_BELOW_BYTES free when it is raised (before staged files are cleaned away)."""
    try:
        yield
    except dg.Failure:
        raise  # a gate's verdict, not a write
    except Exception as error:
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        usage = shutil.disk_usage(existing)
        if _says_disk_full(error) or usage.free < FULL_BELOW_BYTES:
            raise DiskFullError(
                errno.ENOSPC,
                f"{folder}: the disk is full (No space left on device) while writing; "
                f"{usage.free / 2**20:,.1f} MiB free of {usage.total / 2**20:,.1f} MiB on its file system; "
                "free space there or set SALES_DATA_DIR to a folder on a larger disk (the last good outputs "
                "are kept)",
            ) from error
        raise


@contextmanager
def failing_on_bad_input(path: Path, landed: Landed | None = None) -> Iterator[None]:
    """Any error reading the export reaches the user as one line (file, what, setting); the traceback of
    a parser error (Polars, DuckDB, codecs) follows in the failure's metadata, never leads. With `landed`,
    the messages name the user's file where they name the landed copy read (its digest is in metadata).
    A full disk (`naming_a_full_disk`) is named as such, not blamed on the export."""

    def shown(text: str) -> str:
        return text if landed is None else text.replace(str(landed.path), str(landed.source))

    try:
        yield
    except Exception as error:
        if isinstance(error, DiskFullError):
            raise dg.Failure(
                description=error.strerror,
                metadata={"traceback": dg.MetadataValue.text(traceback.format_exc())},
            ) from error
        if isinstance(error, (ExportError, EmptyInputError, InputPathError, KeyConflictError)):
            raise dg.Failure(description=shown(str(error))) from error
        if isinstance(error, (pl.exceptions.PolarsError, duckdb.Error, UnicodeError)):
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise dg.Failure(
                description=shown(f"{path}: {type(error).__name__}: {first[:200]}; {SETTINGS_HINT}"),
                metadata={"traceback": dg.MetadataValue.text(traceback.format_exc())},
            ) from error
        raise


# What `raw_csv` found about the copy it landed (the opened export and its record pass), kept for
# `clean_parquet` when both run in one process (a run of cheap assets, the refresh): the copy is immutable,
# so they are what `clean_parquet` would find again by reading it. One slot, the latest copy; the key names
# the copy (path, digest, size, modification time) and the ingest settings it was read with.
_handed: tuple[tuple, Inspected] | None = None


def _handover_key(landed: Landed, settings: Settings) -> tuple:
    return (str(landed.path), landed.sha256, landed.bytes, landed.mtime_ns, settings.ingest.model_dump_json())


def hand_over(landed: Landed, settings: Settings, inspected: Inspected) -> None:
    """Keep `inspected` (of `landed`, read with `settings`) for `take_over`, closing what was kept before."""
    global _handed
    if _handed is not None:
        _handed[1].close()
    _handed = (_handover_key(landed, settings), inspected)


def take_over(landed: Landed, settings: Settings) -> Inspected | None:
    """What `raw_csv` kept about `landed` in this process with the same settings (the caller closes it),
    else None; the slot is emptied either way."""
    global _handed
    kept, _handed = _handed, None
    if kept is None:
        return None
    if kept[0] != _handover_key(landed, settings):
        kept[1].close()
        return None
    return kept[1]


def inspect_raw_csv(path: Path, settings: Settings) -> tuple[dict, Inspected]:
    """Everything `raw_csv` records about the source file (its dialect with evidence, its record count
    from the reader), and the opened export with its record pass (`inspect_export`), which the caller
    closes or hands over. Raises ExportError / EmptyInputError naming what is wrong."""
    # Temp copies go under the data folder: the export's own folder may be read-only.
    work_root = settings.root / "processed"
    work_root.mkdir(parents=True, exist_ok=True)
    # One parse counts the records, finds the distinct dates and hashes the order-line keys (what the
    # cleaning needs from it); the line check only on doubt.
    inspected = inspect_export(path, settings.ingest, work_root)
    export, records = inspected.export, inspected.records
    structure = export.structure() if export.checked else None
    malformed = structure.malformed.height if structure else 0
    if records.rows + malformed == 0:
        inspected.close()
        raise EmptyInputError(f"{path}: has a header but no data rows")
    return {
        **export.dialect.metadata(),
        # Sentences: a Markdown list wraps in the UI's metadata column where a table's cells do not.
        "dialect_evidence": dg.MetadataValue.md(
            "\n".join(f"- **{part}**: {text}" for part, text in export.dialect.evidence.items())
        ),
        "extra_columns": ", ".join(export.header.extra) or "none",
        "unnamed_columns_dropped": len(export.header.unnamed),
        "malformed_lines": malformed,
        "blank_lines": structure.blank_lines if structure else 0,
        "dagster/row_count": records.rows + malformed,
    }, inspected


@dg.asset(group_name=GROUP, kinds={"csv"})
def raw_csv(context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource) -> dg.MaterializeResult:
    """The sales export as it arrived: path, size, sha256, its dialect (encoding, delimiter, decimal mark,
    thousands separator, currency signs, date order; each detected or set in `SALES_INGEST__READING__DIALECT__*`)
    and its record count as the one reader counts it (malformed lines included).

    The file is checked first (a configured `SALES_RAW_CSV` that is missing, a directory, a FIFO, a
    symlink loop or unreadable stops the run before anything is written), then copied into
    `raw/landed/<sha256>.csv` while it is hashed; that immutable copy is what is inspected here and what
    `clean_parquet` reads, so lineage and data name the same bytes. Only when no `SALES_RAW_CSV` is
    configured and the default `$SALES_DATA_DIR/raw/sales_data_sample.csv` does not exist is a
    deterministic sample shaped like the real export generated there first.
    """
    settings = sales_settings.get()
    path = settings.raw_csv_path
    generated = settings.raw_csv is None and not path.exists()
    if generated:
        context.log.warning(f"{path} does not exist: generating the embedded sample there")
        result = generate_sales_csv(
            path,
            rows=settings.ingest.generator_default_rows,
            seed=settings.ingest.generator_seed,
            chunk_rows=settings.ingest.generator_chunk_rows,
            dealsize_thresholds=settings.ingest.dealsize_thresholds,
            price_cap=settings.ingest.price_cap,
        )
        context.log.info(f"generated {result['rows']:,} rows in {result['seconds']}s")
    with failing_on_bad_input(path), naming_a_full_disk(settings.landed_dir.parent):
        check_input_file(path, "SALES_RAW_CSV")
        landed = land(path, settings.landed_dir)
    with (
        timed(context.log, f"inspect {path}") as timing,
        failing_on_bad_input(path, landed),
        naming_a_full_disk(settings.root / "processed"),
    ):
        facts, inspected = inspect_raw_csv(landed.path, settings)
    make_current(landed)
    hand_over(landed, settings, inspected)
    digest = landed.sha256
    context.log.info(
        f"{path}: {facts['dagster/row_count']:,} records, encoding {facts['encoding']}, delimiter "
        f"{facts['delimiter']!r}, date order {facts['date_order']}, sha256 {digest[:12]}, landed as "
        f"{landed.path}"
    )
    return dg.MaterializeResult(
        metadata={
            "path": path_metadata(settings, path),
            # The copy is `<sha256>.csv` in this folder (the full digest is the data version); the folder
            # alone keeps the metadata column narrow.
            "landed_in": path_metadata(settings, landed.path.parent),
            "bytes": landed.bytes,
            # The full digest is the data version; a prefix identifies the file in the metadata column.
            "sha256_prefix": digest[:16],
            **facts,
            "generated_sample": generated,
            "seconds": timing["seconds"],
        },
        data_version=dg.DataVersion(digest),
    )


# The preview's columns: who ordered what, when, how much, so the table fits the UI's metadata column.
PREVIEW_COLUMNS = ["ORDERNUMBER", "ORDERDATE", "PRODUCTLINE", "COUNTRY", "SALES"]


def _stats_metadata(stats: CleanStats) -> dict:
    by_year = pl.DataFrame(
        {"YEAR": list(stats.rows_by_year), "rows": list(stats.rows_by_year.values())},
        schema={"YEAR": pl.Int64, "rows": pl.Int64},
    )
    rules = pl.DataFrame(
        {
            "rule": list(stats.rejects_by_rule),
            "rows": [c.rows for c in stats.rejects_by_rule.values()],
            "example_lines": [", ".join(map(str, c.example_lines)) for c in stats.rejects_by_rule.values()],
        },
        schema={"rule": pl.String, "rows": pl.Int64, "example_lines": pl.String},
    )
    dialect = stats.dialect.metadata() if stats.dialect else {}
    return {
        "rows_in": stats.rows_in,
        "duplicates_removed": stats.duplicates_removed,
        "key_conflicts": stats.key_conflicts,
        "rows_rejected": stats.rows_rejected,
        "malformed_lines": stats.rows_malformed,
        "dagster/row_count": stats.rows_clean,
        "row_balance": stats.balance,
        "rows_by_year": table_metadata(by_year),
        "rejects_by_rule": table_metadata(rules),
        "absent_optional_columns": ", ".join(stats.absent_optional_columns) or "none",
        "extra_columns": ", ".join(stats.extra_columns) or "none",
        **{f"dialect_{k}": v for k, v in dialect.items()},
        "seconds_by_step": key_value_table(stats.seconds, ("step", "seconds")),
    }


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[raw_csv],
    check_specs=CLEAN_PARQUET_CHECK_SPECS,
)
def clean_parquet(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource
) -> dg.MaterializeResult:
    """The cleaned order lines: read by the one export reader (dialect detected, cells trimmed, null
    tokens missing, strict numbers and dates), typed columns, YEAR and MONTH added, ADDRESSLINE2 dropped,
    STATE/POSTALCODE blanks filled with `Unknown`, TERRITORY `NA` kept as North America, exact duplicates
    removed, unusable rows and malformed lines quarantined with a reason and their line. Hive-partitioned
    Parquet by YEAR, swapped in whole; a run that rejects too much, or meets dates that disagree with
    YEAR_ID/MONTH_ID/QTR_ID or fall outside the configured range, stops and leaves the previous data."""
    settings = sales_settings.get()
    with failing_on_bad_input(settings.landed_dir):
        landed = current_landed(settings.landed_dir)
    source = landed.path
    work_root = settings.root / "processed"
    work_root.mkdir(parents=True, exist_ok=True)
    # raw_csv's reading of these bytes when it ran in this process: not opened and parsed again.
    inspected = take_over(landed, settings)
    with (
        contextlib.closing(inspected) if inspected is not None else contextlib.nullcontext(),
        timed(context.log, f"clean {landed.source} (sha256 {landed.sha256[:12]})") as timing,
        tempfile.TemporaryDirectory(dir=work_root) as work,
        failing_on_bad_input(source, landed),
        staged_directory(settings.parquet_dir) as parquet_stage,
        atomic_path(settings.rejects_path) as rejects_stage,
        naming_a_full_disk(work_root),
    ):
        stats = clean_to_parquet(source, parquet_stage, rejects_stage, settings.ingest, Path(work), inspected)
        stops = blocking_problems(stats, settings.ingest)
        findings = clean_layer_findings(parquet_stage, settings)
        stops += [f.metadata["problem"] for n, f in findings.items() if n in BLOCKING_CHECKS and not f.passed]
        if stops:
            # Raised inside the staging blocks: the staged output is thrown away and the previous good
            # Parquet, rejects and everything downstream stay in place.
            raise dg.Failure(
                description=f"{landed.source}: " + " | ".join(stops),
                metadata={"row_balance": stats.balance},
            )
    context.log.info(stats.balance)
    preview = pl.scan_parquet(settings.parquet_dir, hive_partitioning=True).head(5).collect()
    # Dates without the midnight time the CSV's dates carry, one of the things that keeps the table narrow.
    preview = preview.select(c for c in PREVIEW_COLUMNS if c in preview.columns).with_columns(
        pl.col(pl.Datetime).dt.date()
    )
    return dg.MaterializeResult(
        metadata={
            **_stats_metadata(stats),
            "source_path": path_metadata(settings, landed.source),
            "source_sha256_prefix": landed.sha256[:16],
            "parquet_dir": path_metadata(settings, settings.parquet_dir),
            "rejects_path": path_metadata(settings, settings.rejects_path),
            "preview": table_metadata(preview),
            "seconds": timing["seconds"],
        },
        check_results=check_results(findings),
    )


# ---- a folder of exports: one partition per export file and content -------------------------------------

raw_export = dg.AssetSpec(
    "raw_export",
    group_name=GROUP,
    kinds={"csv"},
    partitions_def=EXPORTS_PARTITIONS,
    description="One export of the folder `SALES_RAW_DIR` (files matching `SALES_INGEST__EXPORT_GLOB`, "
    "default `*.csv`) per partition, keyed `<name>@<sha256[:12]>`: a file whose bytes change is a new "
    "partition. Recorded (path, bytes, sha256, modification time) by the sensor `raw_export_files` or the "
    "daily schedule when they register the file; not materialised by a run.",
)


def export_event_metadata(name: str, path: Path, digest: str, size: int, mtime_ns: int) -> dict:
    """What `raw_export` records about one export when it is registered."""
    return {
        "name": name,
        "path": dg.MetadataValue.path(str(path)),
        "bytes": size,
        "sha256_prefix": digest[:16],
        "mtime_ns": mtime_ns,
    }


def locate_export(settings: Settings, key: str) -> tuple[str, Path, str, int]:
    """(name, path, sha256, mtime_ns) of the export file of partition `key`, read before it is cleaned.
    Raises dg.Failure when no folder is configured, the file is gone, or its bytes are no longer the key's
    (the sensor registers the new content as a new partition)."""
    raw_dir = settings.raw_dir_path
    if raw_dir is None:
        raise dg.Failure(description=f"{key}: SALES_RAW_DIR is not set, so there are no export partitions")
    escaped, prefix = split_key(key)
    found = {
        key_name(name): (name, path) for name, path in export_paths(raw_dir, settings.ingest.export_glob)
    }
    if escaped not in found:
        shown = raw_dir / urllib.parse.unquote(escaped)
        raise dg.Failure(description=f"{key}: {shown} is no longer in the folder of exports")
    name, path = found[escaped]
    mtime_ns = path.stat().st_mtime_ns
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        raise dg.Failure(
            description=f"{key}: {path} changed since it was registered (sha256 now {digest[:12]}); its new "
            "content is another partition, registered by the sensor raw_export_files or the daily schedule"
        )
    return name, path, digest, mtime_ns


def clean_one_export(settings: Settings, key: str, log) -> dict:
    """Clean the export of partition `key` into its own published folder (cleaned Parquet, quarantine,
    manifest); returns the partition's materialisation metadata. Raises dg.Failure when the export cannot
    be read right or a gate of `clean_parquet` stops it (the previous folder, if any, stays)."""
    name, path, digest, mtime_ns = locate_export(settings, key)
    target = partition_dir(settings.exports_clean_dir, key)
    work_root = settings.root / "processed"
    work_root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=work_root) as work,
        failing_on_bad_input(path),
        staged_directory(target) as stage,
        naming_a_full_disk(work_root),
    ):
        data = stage / DATA_FOLDER
        stats = clean_to_parquet(path, data, stage / REJECTS_FILE, settings.ingest, Path(work))
        stops = blocking_problems(stats, settings.ingest)
        findings = clean_layer_findings(data, settings)
        stops += [f.metadata["problem"] for n, f in findings.items() if n in BLOCKING_CHECKS and not f.passed]
        if stops:
            raise dg.Failure(description=f"{key}: {path}: " + " | ".join(stops))
        ExportManifest(
            key=key,
            name=name,
            sha256=digest,
            bytes=path.stat().st_size,
            mtime_ns=mtime_ns,
            rows_in=stats.rows_in,
            rows_clean=stats.rows_clean,
            rows_rejected=stats.rows_rejected,
            duplicates_removed=stats.duplicates_removed,
        ).write(stage)
    log.info(f"{key}: {stats.balance}")
    return {
        **_stats_metadata(stats),
        "sha256_prefix": digest[:16],
        "mtime_ns": mtime_ns,
        # The folder is `<layer>/<partition key>`; the layer alone keeps the metadata column narrow.
        "layer": path_metadata(settings, settings.exports_clean_dir),
        "failed_checks": ", ".join(n for n, f in findings.items() if not f.passed) or "none",
        "seconds": round(time.perf_counter() - started, 3),
    }


# BackfillPolicy.single_run: the new exports a sensor tick or the schedule registers are cleaned in one run
# (one process), each partition still its own materialisation. Its "beta" warning is Dagster's.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    clean_export_asset = dg.asset(
        name="clean_export",
        group_name=GROUP,
        kinds={"polars", "parquet"},
        deps=[raw_export],
        partitions_def=EXPORTS_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Each partition's materialisation is logged with its key; the run returns no output of its own.
        output_required=False,
    )


@clean_export_asset
def clean_export(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource
) -> Iterator[dg.AssetMaterialization]:
    """The cleaned order lines of one export of `SALES_RAW_DIR` per partition: cleaned exactly as
    `clean_parquet` cleans the single CSV (the one reader, the same rules, gates and quarantine) into
    `processed/sales_exports/<key>/` (`sales/YEAR=*/` Parquet, `rejects.parquet`, `export.json` with the
    file's modification time, which ranks the exports for `duckdb_table`). Each partition is swapped in
    whole; one that fails leaves its previous folder and does not stop the others, and the run then fails
    naming it. A key is cleaned once: a changed file is a new key."""
    settings = sales_settings.get()
    failed: dict[str, str] = {}
    for key in context.partition_keys:
        try:
            metadata = clean_one_export(settings, key, context.log)
        except dg.Failure as error:
            failed[key] = error.description or str(error)
            context.log.error(failed[key])
            continue
        yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata)
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(context.partition_keys)} export(s) failed: "
            + " | ".join(failed.values())
        )
