"""Assets and checks of group `analytics`: the summaries, missing values before and after cleaning,
descriptive statistics, the seed's plots, the IQR-filtered view, the EDA report and the PSI drift. Thin
wiring over the pure modules beside this one; every computation over the warehouse table is DuckDB SQL
(read-only connection), so no step loads the table into memory."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.analytics import descriptive, missing_values
from sales_assets.analytics.drift import (
    drift_comparisons,
    drift_figure,
    drift_report,
    drift_status,
    drift_table,
)
from sales_assets.analytics.eda_report import eda_report_markdown
from sales_assets.analytics.plots import EDA_PLOTS
from sales_assets.analytics.summaries import compute_summaries, productline_chart
from sales_assets.analytics.warehouse_reader import rows_in_key_order, scalar_row
from sales_assets.export_layer import export_paths
from sales_assets.ingest.source import landed_or_configured
from sales_assets.io import atomic_path, write_json_atomic, write_table_pair, write_text_atomic
from sales_assets.metadata import (
    number_metadata,
    path_metadata,
    save_figure,
    table_metadata,
    timed,
)
from sales_assets.outliers import iqr_keep_condition, iqr_steps
from sales_assets.resources import SalesSettingsResource
from sales_assets.sql import quote_identifier, quote_literal
from sales_serving.contract.formatting import Quantity

GROUP = "analytics"
CHECK_SUMMARY_TOTALS = "summary_totals_match_table"
NO_MISSING_AFTER_CLEANING = "no_missing_after_cleaning"
PSI_WITHIN_BOUNDS = "psi_within_bounds"
MISSING_VALUES_STEM = "missing_values"
DESCRIPTIVE_STATS_STEM = "numeric_descriptive_stats"
IQR_STEPS_STEM = "iqr_filter_steps"
EDA_REPORT_FILE = "eda_report.md"
DRIFT_REPORT_FILE = "sales_drift.json"
DRIFT_PLOT_FILE = "sales_drift.png"
# The IQR view's row order (one row per order line).
IQR_VIEW_ORDER = ("ORDERNUMBER", "ORDERLINENUMBER")

# Units and meanings of the columns the UI tables show, in their headers' tooltips.
SUMMARY_COLUMNS = {
    "total_sales": "sum of SALES, USD",
    "average_sales": "mean SALES per order line, USD",
    "order_lines": "order lines (rows)",
}
# The missing-value report's columns as the UI shows them (short names, so the table fits the metadata
# column; the files keep the long ones), with what each counts.
MISSING_VIEW = {
    "missing_before": "raw",
    "missing_before_pct": "raw_pct",
    "missing_after": "table",
    "missing_after_pct": "table_pct",
}
MISSING_COLUMNS = {
    "raw": "missing_before: blank or empty cells in the raw CSV",
    "raw_pct": "missing_before_pct: % of the raw CSV's rows",
    "table": "missing_after: null or blank cells in the warehouse table (empty: column dropped)",
    "table_pct": "missing_after_pct: % of the warehouse table's rows",
}


def missing_table_metadata(report: pl.DataFrame) -> dg.MetadataValue:
    """The missing-value report (`missing_values.missing_value_report`) as a narrow typed table: short
    column names, no `in_warehouse` (an empty `table` cell already says the column was dropped)."""
    view = report.select("column", *MISSING_VIEW).rename(MISSING_VIEW)
    return table_metadata(view, max_rows=view.height, descriptions=MISSING_COLUMNS)


IQR_COLUMNS = {
    "q1": "first quartile, in the column's unit",
    "q3": "third quartile, in the column's unit",
    "lower": "Q1 - factor x IQR; rows below are dropped",
    "upper": "Q3 + factor x IQR; rows above are dropped",
    "rows_before": "rows this step saw (kept by the steps before)",
    "rows_dropped": "rows outside [lower, upper] or null",
}
PSI_COLUMNS = {
    "psi": "population stability index (0: same distribution)",
    "status": "ok up to analytics.psi_warn, warn above it, fail above analytics.psi_fail",
    "reference": "the earlier period (year or quarter)",
    "current": "the period compared with it",
}


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "parquet", "csv"},
    deps=["duckdb_table"],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_SUMMARY_TOTALS,
            asset="summaries",
            description="Product-line and yearly totals add up to the table's total SALES (to the cent).",
        )
    ],
)
def summaries(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """SALES total, average and count by PRODUCTLINE, for the top N countries, by year and by year and
    month: CSV and Parquet under `output/summary/`, and a bar chart of sales by product line under
    `output/plots/`."""
    settings = sales_settings.get()
    table = settings.warehouse.table
    with timed(context.log, "summaries") as timing, duckdb_reader.get_connection() as conn:
        tables = compute_summaries(conn, table, settings.analytics.top_n_countries)
        (table_total,) = scalar_row(conn, f"SELECT round(sum(SALES), 2) FROM {quote_identifier(table)}")
        paths = {name: write_table_pair(frame, settings.summary_dir, name) for name, frame in tables.items()}
        chart = save_figure(
            productline_chart(tables["sales_by_productline"]),
            settings.plots_dir / "sales_by_productline.png",
            caption="Total SALES (USD) per product line over the whole table, largest at the top.",
        )
    totals = {
        name: round(tables[name]["total_sales"].sum(), 2)
        for name in ("sales_by_productline", "sales_by_year")
    }
    consistent = all(abs(total - table_total) < 0.01 for total in totals.values())
    metadata: dict = {
        name: table_metadata(frame, max_rows=frame.height, descriptions=SUMMARY_COLUMNS)
        for name, frame in tables.items()
    }
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "sales_by_productline_chart": chart,
            "total_sales_usd": number_metadata(float(table_total), Quantity.MONEY),
            "summary_dir": path_metadata(settings, settings.summary_dir),
            "files": dg.MetadataValue.md(
                ", ".join(f"`{name}`" for name in paths) + " as `.csv` and `.parquet` in `summary_dir`"
            ),
            "seconds": timing["seconds"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_SUMMARY_TOTALS,
                passed=consistent,
                metadata={
                    "table_total_usd": float(table_total),
                    **{f"{n}_total_usd": float(t) for n, t in totals.items()},
                },
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    deps=["raw_csv", "duckdb_table"],
    kinds={"duckdb", "polars", "csv"},
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
    """Missing values per column before cleaning (the raw CSV as `raw_csv` landed it, read as text in its
    detected encoding, blank cells counted, 'NA' kept as North America; with `SALES_RAW_DIR`, summed over
    the exports now in that folder) and after it (the warehouse `sales` table)."""
    settings = sales_settings.get()
    raw_dir = settings.raw_dir_path
    raws = (
        [path for _, path in export_paths(raw_dir, settings.ingest.export_glob)]
        if raw_dir is not None
        else [landed_or_configured(settings.landed_dir, settings.raw_csv_path)]
    )
    with timed(context.log, f"counting blanks in {raw_dir or raws[0]}") as raw_timing:
        counted = [missing_values.raw_blank_counts(raw, settings.ingest) for raw in raws]
    rows_before = sum(rows for rows, _, _ in counted)
    before = (
        pl.concat([frame for _, frame, _ in counted])
        .group_by("column", maintain_order=True)
        .agg(pl.col("missing").sum())
    )
    encoding = ", ".join(sorted({dialect.encoding for _, _, dialect in counted}))
    with (
        timed(context.log, "counting missing values in the sales table") as table_timing,
        duckdb_reader.get_connection() as conn,
    ):
        rows_after, after = missing_values.table_blank_counts(conn, settings.warehouse.table)
    report = missing_values.missing_value_report(before, rows_before, after, rows_after)
    paths = write_table_pair(report, settings.summary_dir, MISSING_VALUES_STEM)
    still_missing = report.filter(pl.col("in_warehouse") & (pl.col("missing_after") > 0))
    return dg.MaterializeResult(
        metadata={
            "missing_values": missing_table_metadata(report),
            "raw_encoding": encoding,
            # Counts as people read them (`2,823`), by the one formatter (number_metadata).
            "rows_before": number_metadata(rows_before, Quantity.COUNT),
            "rows_after": number_metadata(rows_after, Quantity.COUNT),
            "columns_with_missing_before": number_metadata(
                report.filter(pl.col("missing_before") > 0).height, Quantity.COUNT
            ),
            "missing_cells_before": number_metadata(
                int(report["missing_before"].fill_null(0).sum()), Quantity.COUNT
            ),
            "missing_cells_after": number_metadata(
                int(report["missing_after"].fill_null(0).sum()), Quantity.COUNT
            ),
            "csv_path": path_metadata(settings, paths["csv"]),
            "parquet_path": path_metadata(settings, paths["parquet"]),
            "raw_seconds": raw_timing["seconds"],
            "table_seconds": table_timing["seconds"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_MISSING_AFTER_CLEANING,
                passed=still_missing.is_empty(),
                metadata={
                    "columns_with_missing": missing_table_metadata(still_missing)
                    if still_missing.height
                    else "none",
                },
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "csv", "parquet"},
)
def numeric_descriptive_stats(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """count, missing, mean, standard deviation, min, quartiles and max of every numeric column of the
    `sales` table, as `output/summary/numeric_descriptive_stats.{csv,parquet}`."""
    settings = sales_settings.get()
    table = settings.warehouse.table
    with (
        timed(context.log, "describing the numeric columns") as timing,
        duckdb_reader.get_connection() as conn,
    ):
        stats = descriptive.numeric_descriptive_stats(conn, table)
        (rows,) = scalar_row(conn, f"SELECT count(*) FROM {quote_identifier(table)}")
    paths = write_table_pair(stats, settings.summary_dir, DESCRIPTIVE_STATS_STEM)
    return dg.MaterializeResult(
        metadata={
            # Two narrow tables, so each fits the UI's metadata column (the files hold both in one).
            "statistics": table_metadata(
                stats.drop("q25", "median", "q75", "missing"),
                max_rows=stats.height,
                descriptions=descriptive.DESCRIPTIONS,
            ),
            "quartiles": table_metadata(
                stats.select("column", "q25", "median", "q75"),
                max_rows=stats.height,
                descriptions=descriptive.DESCRIPTIONS,
            ),
            "rows": int(rows),
            "numeric_columns": stats.height,
            "csv_path": path_metadata(settings, paths["csv"]),
            "parquet_path": path_metadata(settings, paths["parquet"]),
            "seconds": timing["seconds"],
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "matplotlib"},
)
def eda_plots(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """The seed's EDA figures as PNG under `output/eda/`, embedded here: histograms of SALES and
    QUANTITYORDERED, SALES against QUANTITYORDERED and PRICEEACH, SALES by PRODUCTLINE and
    QUANTITYORDERED by DEALSIZE."""
    settings = sales_settings.get()
    table = settings.warehouse.table
    metadata: dict[str, object] = {}
    with (
        timed(context.log, f"drawing {len(EDA_PLOTS)} plots") as timing,
        duckdb_reader.get_connection() as conn,
    ):
        (rows,) = scalar_row(conn, f"SELECT count(*) FROM {quote_identifier(table)}")
        metadata["rows"] = number_metadata(rows, Quantity.COUNT)
        for stem, plot in EDA_PLOTS.items():
            figure = plot.draw(conn, table)
            metadata[stem] = save_figure(figure, settings.eda_dir / f"{stem}.png", caption=plot.caption)
    metadata["eda_dir"] = path_metadata(settings, settings.eda_dir)
    metadata["seconds"] = timing["seconds"]
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "parquet"},
)
def iqr_filtered_sales(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """The `sales` table without IQR outliers, as the seed filtered it: column by column in the
    configured order (settings `analytics.iqr_columns`, factor `analytics.iqr_factor`), quartiles
    recomputed on the rows left. A separate Parquet view ordered by ORDERNUMBER, ORDERLINENUMBER; the
    warehouse tables keep every row."""
    settings = sales_settings.get()
    analytics = settings.analytics
    table = quote_identifier(settings.warehouse.table)
    target = settings.iqr_filtered_path
    with (
        timed(context.log, f"IQR filter on {analytics.iqr_columns}") as timing,
        duckdb_reader.get_connection() as conn,
    ):
        steps = iqr_steps(conn, table, analytics.iqr_columns, analytics.iqr_factor)
        keep, parameters = iqr_keep_condition(steps)
        (rows_in,) = scalar_row(conn, f"SELECT count(*) FROM {table}")
        # A table already in the view's order (as `duckdb_table` loads the generated exports) is written
        # as it is read: the ORDER BY would give the same rows in the same order, through a sort of every
        # column that spills past memory_limit (3 GB written to temp files at 20 million rows).
        in_order = rows_in_key_order(conn, settings.warehouse.table, IQR_VIEW_ORDER)
        order_by = "" if in_order else f" ORDER BY {', '.join(IQR_VIEW_ORDER)}"
        context.log.info(
            f"{settings.warehouse.table} rows already in {', '.join(IQR_VIEW_ORDER)} order: written without sorting"
            if in_order
            else f"sorting the view by {', '.join(IQR_VIEW_ORDER)} (the table's rows are not in that order)"
        )
        with atomic_path(target) as staged:
            conn.execute(
                f"COPY (SELECT * FROM {table} WHERE {keep}{order_by}) "
                f"TO {quote_literal(str(staged))} (FORMAT parquet, COMPRESSION zstd)",
                parameters,
            ).fetchall()
    rows_kept = rows_in - int(steps["rows_dropped"].sum())
    steps_paths = write_table_pair(steps, settings.summary_dir, IQR_STEPS_STEM)
    for step in steps.iter_rows(named=True):
        context.log.info(f"IQR {step['column']}: dropped {step['rows_dropped']:,} of {step['rows_before']:,}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows_kept,
            "rows_in": number_metadata(rows_in, Quantity.COUNT),
            "rows_kept": number_metadata(rows_kept, Quantity.COUNT),
            "rows_dropped": number_metadata(rows_in - rows_kept, Quantity.COUNT),
            "iqr_factor": analytics.iqr_factor,
            # Rows dropped per column are in this table; rows before each step follow from them.
            "steps": table_metadata(steps.drop("rows_before"), descriptions=IQR_COLUMNS),
            "path": path_metadata(settings, target),
            "steps_path": path_metadata(settings, steps_paths["parquet"]),
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
            "path": path_metadata(settings, target),
            "plots": len(plots),
            "iqr_rows_kept": int(rows_kept),
        }
    )


def psi_table_metadata(table: pl.DataFrame) -> dg.MetadataValue:
    """The drift table (`drift.TABLE_SCHEMA`) narrowed to fit the UI's metadata column: column, the two
    periods, PSI (3 decimals, `table_metadata`) and status; the row counts behind each PSI stay in the JSON report."""
    narrow = table.select("column", "reference", "current", "psi", "status")
    return table_metadata(narrow, max_rows=narrow.height, descriptions=PSI_COLUMNS)


def drift_check_result(table: pl.DataFrame, warn: float, fail: float) -> dg.AssetCheckResult:
    """Passes while every PSI is at most `warn`; fails with WARN severity above it and with ERROR
    severity above `fail`, naming the comparisons that crossed."""
    max_psi = float(table["psi"].max()) if table.height else 0.0
    status = drift_status(max_psi, warn, fail)
    crossed = table.filter(pl.col("psi") > warn).sort("psi", descending=True)
    return dg.AssetCheckResult(
        check_name=PSI_WITHIN_BOUNDS,
        passed=status == "ok",
        severity=dg.AssetCheckSeverity.ERROR if status == "fail" else dg.AssetCheckSeverity.WARN,
        metadata={
            "max_psi": round(max_psi, 4),
            "status": status,
            "warn_above": warn,
            "fail_above": fail,
            "comparisons_above_warn": crossed.height,
            "crossed": psi_table_metadata(crossed) if crossed.height else "none",
        },
    )


@dg.asset(
    group_name=GROUP,
    deps=["duckdb_table"],
    kinds={"duckdb", "json"},
    check_specs=[
        dg.AssetCheckSpec(
            PSI_WITHIN_BOUNDS,
            asset="sales_drift",
            description="Every PSI is at most analytics.psi_warn (WARN above it, ERROR above analytics.psi_fail).",
        )
    ],
)
def sales_drift(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """Population stability index of SALES, QUANTITYORDERED and PRICEEACH (settings
    `analytics.drift_columns`) between the earliest and the latest year and between each quarter and
    the next, on quantile bins fixed on the reference period: `output/monitoring/sales_drift.json` and a
    comparison plot."""
    settings = sales_settings.get()
    analytics = settings.analytics
    columns, bins = analytics.drift_columns, analytics.drift_bins
    warn, fail = analytics.psi_warn, analytics.psi_fail
    with timed(context.log, f"PSI of {columns}") as timing, duckdb_reader.get_connection() as conn:
        comparisons = drift_comparisons(conn, settings.warehouse.table, columns, bins)
        table = drift_table(comparisons, warn, fail)
    report = drift_report(table, bins, warn, fail)
    report_path = write_json_atomic(settings.monitoring_dir / DRIFT_REPORT_FILE, report)
    plot = save_figure(
        drift_figure(comparisons, columns, warn, fail),
        settings.monitoring_dir / DRIFT_PLOT_FILE,
        caption=f"Top: share of rows per {bins}-quantile bin, earliest vs latest year; "
        f"bottom: PSI of each quarter against the one before (warn {warn}, fail {fail}).",
    )
    context.log.info(f"max PSI {report['max_psi']:.3f} ({report['status']})")
    return dg.MaterializeResult(
        metadata={
            "max_psi": round(report["max_psi"], 4),
            "status": report["status"],
            "comparisons": table.height,
            "comparisons_above_warn": table.filter(pl.col("psi") > warn).height,
            "psi": psi_table_metadata(table),
            "plot": plot,
            "report_path": path_metadata(settings, report_path),
            "seconds": timing["seconds"],
        },
        check_results=[drift_check_result(table, warn, fail)],
    )
