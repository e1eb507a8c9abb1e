"""EDA assets of group `analytics`: missing values before and after cleaning, descriptive statistics,
the seed's plots, the IQR-filtered view and the report that gathers them. Thin wiring over the pure
modules beside this one."""

import dagster as dg
import polars as pl
import polars.selectors as cs
from dagster_duckdb import DuckDBResource

from sales_assets.analytics import descriptive, missing_values
from sales_assets.analytics.eda_report import eda_report_markdown
from sales_assets.analytics.outliers import iqr_filter
from sales_assets.analytics.plots import EDA_PLOT_COLUMNS, EDA_PLOTS
from sales_assets.analytics.warehouse_reader import read_sales, with_sales_lazy
from sales_assets.ingest.encoding import detect_encoding
from sales_assets.io import write_frame_atomic, write_table_pair, write_text_atomic
from sales_assets.metadata import markdown_table, save_figure, timed
from sales_assets.resources import FILE_LOCK_RETRY, SalesSettingsResource

GROUP = "analytics"
NO_MISSING_AFTER_CLEANING = "no_missing_after_cleaning"
MISSING_VALUES_STEM = "missing_values"
DESCRIPTIVE_STATS_STEM = "numeric_descriptive_stats"
IQR_STEPS_STEM = "iqr_filter_steps"
EDA_REPORT_FILE = "eda_report.md"


@dg.asset(
    group_name=GROUP,
    deps=["raw_csv", "duckdb_table"],
    kinds={"duckdb", "polars", "csv"},
    retry_policy=FILE_LOCK_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            NO_MISSING_AFTER_CLEANING,
            asset="missing_value_report",
            description="Every column of the warehouse `sales` table is free of nulls and blanks.",
        )
    ],
)
def missing_value_report(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """Missing values per column before cleaning (the raw CSV, read as text in its detected encoding,
    blank cells counted, 'NA' kept as North America) and after it (the warehouse `sales` table)."""
    settings = sales_settings.get()
    raw = settings.raw_csv_path
    encoding = detect_encoding(raw, settings.ingest.candidate_encodings).encoding
    with timed(context.log, f"counting blanks in {raw} ({encoding})") as raw_timing:
        rows_before, before = missing_values.raw_blank_counts(raw, encoding)
    with timed(context.log, "counting missing values in the sales table") as table_timing:
        rows_after, after = with_sales_lazy(duckdb_reader, missing_values.blank_counts)
    report = missing_values.missing_value_report(before, rows_before, after, rows_after)
    paths = write_table_pair(report, settings.summary_dir, MISSING_VALUES_STEM)
    still_missing = report.filter(pl.col("in_warehouse") & (pl.col("missing_after") > 0))
    return dg.MaterializeResult(
        metadata={
            "missing_values": dg.MetadataValue.md(markdown_table(report, max_rows=report.height)),
            "raw_encoding": encoding,
            "rows_before": rows_before,
            "rows_after": rows_after,
            "columns_with_missing_before": report.filter(pl.col("missing_before") > 0).height,
            "missing_cells_before": int(report["missing_before"].fill_null(0).sum()),
            "missing_cells_after": int(report["missing_after"].fill_null(0).sum()),
            "csv_path": dg.MetadataValue.path(str(paths["csv"])),
            "parquet_path": dg.MetadataValue.path(str(paths["parquet"])),
            "raw_seconds": raw_timing["seconds"],
            "table_seconds": table_timing["seconds"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_MISSING_AFTER_CLEANING,
                passed=still_missing.is_empty(),
                metadata={
                    "columns_with_missing": dg.MetadataValue.md(markdown_table(still_missing))
                    if still_missing.height
                    else "none",
                },
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "polars", "csv", "parquet"},
    retry_policy=FILE_LOCK_RETRY,
)
def numeric_descriptive_stats(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """count, missing, mean, standard deviation, min, quartiles and max of every numeric column of the
    `sales` table, as `output/summary/numeric_descriptive_stats.{csv,parquet}`."""
    settings = sales_settings.get()
    with timed(context.log, "describing the numeric columns") as timing:
        numeric = with_sales_lazy(duckdb_reader, lambda sales: sales.select(cs.numeric()).collect())
        stats = descriptive.numeric_descriptive_stats(numeric)
    paths = write_table_pair(stats, settings.summary_dir, DESCRIPTIVE_STATS_STEM)
    return dg.MaterializeResult(
        metadata={
            "statistics": dg.MetadataValue.md(markdown_table(stats, max_rows=stats.height)),
            "rows": numeric.height,
            "numeric_columns": stats.height,
            "csv_path": dg.MetadataValue.path(str(paths["csv"])),
            "parquet_path": dg.MetadataValue.path(str(paths["parquet"])),
            "seconds": timing["seconds"],
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "matplotlib"},
    retry_policy=FILE_LOCK_RETRY,
)
def eda_plots(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """The seed's EDA figures as PNG under `output/eda/`, embedded here: histograms of SALES and
    QUANTITYORDERED, SALES against QUANTITYORDERED and PRICEEACH, SALES by PRODUCTLINE and
    QUANTITYORDERED by DEALSIZE."""
    settings = sales_settings.get()
    sales = read_sales(duckdb_reader, EDA_PLOT_COLUMNS)
    metadata: dict[str, object] = {"rows": sales.height}
    with timed(context.log, f"drawing {len(EDA_PLOTS)} plots") as timing:
        for stem, draw in EDA_PLOTS.items():
            metadata[stem] = save_figure(draw(sales), settings.eda_dir / f"{stem}.png")
    metadata["eda_dir"] = dg.MetadataValue.path(str(settings.eda_dir))
    metadata["seconds"] = timing["seconds"]
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "polars", "parquet"},
    retry_policy=FILE_LOCK_RETRY,
)
def iqr_filtered_sales(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """The `sales` table without IQR outliers, as the seed filtered it: column by column in the
    configured order (settings `analytics.iqr_columns`, factor `analytics.iqr_factor`), quartiles
    recomputed on the rows left. A separate Parquet view; the warehouse tables keep every row."""
    settings = sales_settings.get()
    analytics = settings.analytics
    with timed(context.log, f"IQR filter on {analytics.iqr_columns}") as timing:
        sales = read_sales(duckdb_reader).sort("ORDERNUMBER", "ORDERLINENUMBER")
        result = iqr_filter(sales, analytics.iqr_columns, analytics.iqr_factor)
    target = write_frame_atomic(result.kept, settings.iqr_filtered_path)
    steps = write_table_pair(result.steps, settings.summary_dir, IQR_STEPS_STEM)
    for step in result.steps.iter_rows(named=True):
        context.log.info(f"IQR {step['column']}: dropped {step['rows_dropped']:,} of {step['rows_before']:,}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.kept.height,
            "rows_in": sales.height,
            "rows_kept": result.kept.height,
            "rows_dropped": sales.height - result.kept.height,
            **{
                f"rows_dropped_{row['column']}": int(row["rows_dropped"])
                for row in result.steps.iter_rows(named=True)
            },
            "iqr_factor": analytics.iqr_factor,
            "steps": dg.MetadataValue.md(markdown_table(result.steps)),
            "path": dg.MetadataValue.path(str(target)),
            "steps_path": dg.MetadataValue.path(str(steps["parquet"])),
            "seconds": timing["seconds"],
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[missing_value_report, numeric_descriptive_stats, eda_plots, iqr_filtered_sales],
    kinds={"markdown"},
)
def eda_report(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource
) -> dg.MaterializeResult:
    """One Markdown page, `output/eda/eda_report.md`, gathering the missing-value table, the
    descriptive statistics, the IQR filter's steps and the plots from the files the EDA assets wrote."""
    settings = sales_settings.get()
    missing = pl.read_parquet(settings.summary_dir / f"{MISSING_VALUES_STEM}.parquet")
    stats = pl.read_parquet(settings.summary_dir / f"{DESCRIPTIVE_STATS_STEM}.parquet")
    steps = pl.read_parquet(settings.summary_dir / f"{IQR_STEPS_STEM}.parquet")
    rows_kept = pl.scan_parquet(settings.iqr_filtered_path).select(pl.len()).collect().item()
    plots = [f"{stem}.png" for stem in EDA_PLOTS if (settings.eda_dir / f"{stem}.png").is_file()]
    target = write_text_atomic(
        settings.eda_dir / EDA_REPORT_FILE, eda_report_markdown(missing, stats, steps, rows_kept, plots)
    )
    context.log.info(f"EDA report written to {target}")
    return dg.MaterializeResult(
        metadata={
            # The file's image links are relative to it; the UI shows the plots on `eda_plots` instead.
            "report": dg.MetadataValue.md(eda_report_markdown(missing, stats, steps, rows_kept, [])),
            "path": dg.MetadataValue.path(str(target)),
            "plots": len(plots),
            "iqr_rows_kept": int(rows_kept),
        }
    )


eda_assets = [missing_value_report, numeric_descriptive_stats, eda_plots, iqr_filtered_sales, eda_report]
