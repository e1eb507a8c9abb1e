"""Assets of group `ingest`: the raw export (`raw_csv`) and its cleaned, partitioned Parquet layer
(`clean_parquet`), with the clean layer's checks. Wiring only; the rules live in the modules beside it."""

import csv
import io
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl

from sales_assets.ingest.cleaning import (
    CleanStats,
    EmptyInputError,
    MissingColumnsError,
    check_header,
    clean_to_parquet,
)
from sales_assets.ingest.encoding import NotCsvTextError, count_records, detect_encoding, transcode_to_utf8
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.ingest.quality import (
    BLOCKING_CHECKS,
    CLEAN_PARQUET_CHECK_SPECS,
    check_results,
    clean_layer_findings,
)
from sales_assets.io import atomic_path, sha256_file, staged_directory
from sales_assets.metadata import markdown_table, timed
from sales_assets.resources import SalesSettingsResource
from sales_assets.settings import Settings

GROUP = "ingest"


def read_header(path: Path, encoding: str) -> list[str]:
    with open(path, encoding=encoding, newline="") as handle:
        first_line = handle.readline().removeprefix("\ufeff")
    return [c.strip() for c in next(csv.reader(io.StringIO(first_line)), [])]


def inspect_raw_csv(path: Path, settings: Settings) -> dict:
    """Everything `raw_csv` records about the source file; raises a ValueError naming what is wrong."""
    report = detect_encoding(path, settings.ingest.candidate_encodings)
    check_header(read_header(path, report.encoding), settings.ingest, path)
    rows = count_records(path)
    if rows == 0:
        raise EmptyInputError(f"{path}: has a header but no data rows")
    return {
        "encoding": report.encoding,
        "has_bom": report.has_bom,
        "non_ascii_bytes": report.non_ascii_bytes,
        "rows": rows,
    }


@dg.asset(group_name=GROUP, kinds={"csv"})
def raw_csv(context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource) -> dg.MaterializeResult:
    """The sales export as it arrived: path, size, sha256, detected text encoding and row count.

    When `SALES_RAW_CSV` (default `$SALES_DATA_DIR/raw/sales_data_sample.csv`) does not exist, a
    deterministic sample shaped like the real export is generated there first.
    """
    settings = sales_settings.get()
    path = settings.raw_csv_path
    generated = not path.exists()
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
    with timed(context.log, f"inspect {path}") as timing:
        try:
            facts = inspect_raw_csv(path, settings)
            digest = sha256_file(path)
        except (NotCsvTextError, MissingColumnsError, EmptyInputError, UnicodeDecodeError) as error:
            raise dg.Failure(description=str(error)) from error
    context.log.info(f"{path}: {facts['rows']:,} rows, encoding {facts['encoding']}, sha256 {digest[:12]}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "bytes": path.stat().st_size,
            "sha256": digest,
            "encoding": facts["encoding"],
            "has_bom": facts["has_bom"],
            "non_ascii_bytes": facts["non_ascii_bytes"],
            "dagster/row_count": facts["rows"],
            "generated_sample": generated,
            "seconds": timing["seconds"],
        },
        data_version=dg.DataVersion(digest),
    )


def _stats_metadata(stats: CleanStats) -> dict:
    by_year = pl.DataFrame({"YEAR": list(stats.rows_by_year), "rows": list(stats.rows_by_year.values())})
    reasons = pl.DataFrame(
        {"reason": list(stats.rejects_by_reason), "rows": list(stats.rejects_by_reason.values())},
        schema={"reason": pl.String, "rows": pl.Int64},
    )
    return {
        "rows_in": stats.rows_in,
        "duplicates_removed": stats.duplicates_removed,
        "rows_rejected": stats.rows_rejected,
        "dagster/row_count": stats.rows_clean,
        "rows_by_year": dg.MetadataValue.md(markdown_table(by_year)),
        "rejects_by_reason": dg.MetadataValue.md(markdown_table(reasons) if reasons.height else "_none_"),
        "absent_optional_columns": ", ".join(stats.absent_optional_columns) or "none",
        "extra_columns": ", ".join(stats.extra_columns) or "none",
        "seconds_by_step": dg.MetadataValue.json(stats.seconds),
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
    """The cleaned order lines: typed columns, ORDERDATE parsed, YEAR and MONTH added, ADDRESSLINE2
    dropped, STATE/POSTALCODE blanks filled with `Unknown`, TERRITORY `NA` kept as North America, exact
    duplicates removed, unusable rows quarantined with a reason. Hive-partitioned Parquet by YEAR,
    swapped in whole so a failed run leaves the previous data."""
    settings = sales_settings.get()
    source = settings.raw_csv_path
    work_root = settings.root / "processed"
    work_root.mkdir(parents=True, exist_ok=True)
    with timed(context.log, f"clean {source}") as timing, tempfile.TemporaryDirectory(dir=work_root) as work:
        try:
            report = detect_encoding(source, settings.ingest.candidate_encodings)
            csv_path = source
            if report.encoding != "utf-8" or report.has_bom:
                context.log.info(f"transcoding {source} from {report.encoding} to UTF-8")
                csv_path = transcode_to_utf8(source, Path(work) / "source_utf8.csv", report.encoding)
            with (
                staged_directory(settings.parquet_dir) as parquet_stage,
                atomic_path(settings.rejects_path) as rejects_stage,
            ):
                stats = clean_to_parquet(csv_path, parquet_stage, rejects_stage, settings.ingest)
                findings = clean_layer_findings(parquet_stage, settings)
                blocking = {n: f for n, f in findings.items() if n in BLOCKING_CHECKS and not f.passed}
                if blocking:
                    # The staged output is thrown away: the previous good Parquet stays in place.
                    raise dg.Failure(
                        description=f"{source}: "
                        + "; ".join(f.metadata["problem"] for f in blocking.values()),
                        metadata={"failed_checks": ", ".join(blocking)},
                    )
        except (NotCsvTextError, MissingColumnsError, EmptyInputError, UnicodeDecodeError) as error:
            raise dg.Failure(description=str(error)) from error
    context.log.info(
        f"{stats.rows_in:,} rows in, {stats.duplicates_removed:,} duplicates removed, "
        f"{stats.rows_rejected:,} rejected, {stats.rows_clean:,} clean"
    )
    preview = pl.scan_parquet(settings.parquet_dir, hive_partitioning=True).head(5).collect()
    return dg.MaterializeResult(
        metadata={
            **_stats_metadata(stats),
            "encoding": report.encoding,
            "parquet_dir": dg.MetadataValue.path(str(settings.parquet_dir)),
            "rejects_path": dg.MetadataValue.path(str(settings.rejects_path)),
            "preview": dg.MetadataValue.md(markdown_table(preview)),
            "seconds": timing["seconds"],
        },
        check_results=check_results(findings),
    )
