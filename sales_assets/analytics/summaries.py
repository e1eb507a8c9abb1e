"""The `summaries` asset: SALES totals, averages and counts by product line, top countries, year and month,
computed in DuckDB, written as CSV and Parquet and shown in the UI with a bar chart."""

from typing import Any

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.io import write_table_pair
from sales_assets.metadata import markdown_table, pyplot, save_figure, thousands_formatter, timed
from sales_assets.resources import FILE_LOCK_RETRY, SalesSettingsResource

CHECK_SUMMARY_TOTALS = "summary_totals_match_table"

_MEASURES = (
    "round(sum(SALES), 2) AS total_sales, round(avg(SALES), 2) AS average_sales, count(*) AS order_lines"
)


def summary_queries(table: str, top_n_countries: int) -> dict[str, str]:
    """Name -> SQL of every summary table."""
    return {
        "sales_by_productline": f"""
            SELECT PRODUCTLINE, {_MEASURES} FROM {table} GROUP BY PRODUCTLINE ORDER BY total_sales DESC""",
        "top_countries": f"""
            SELECT COUNTRY, {_MEASURES} FROM {table} GROUP BY COUNTRY
            ORDER BY total_sales DESC LIMIT {int(top_n_countries)}""",
        "sales_by_year": f"""
            SELECT YEAR, {_MEASURES} FROM {table} GROUP BY YEAR ORDER BY YEAR""",
        "sales_by_year_month": f"""
            SELECT YEAR, MONTH, {_MEASURES} FROM {table} GROUP BY YEAR, MONTH ORDER BY YEAR, MONTH""",
    }


def compute_summaries(
    conn: duckdb.DuckDBPyConnection, table: str, top_n_countries: int
) -> dict[str, pl.DataFrame]:
    return {name: conn.sql(sql).pl() for name, sql in summary_queries(table, top_n_countries).items()}


def productline_chart(by_productline: pl.DataFrame) -> Any:
    ordered = by_productline.sort("total_sales")
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    ax.barh(ordered["PRODUCTLINE"].to_list(), ordered["total_sales"].to_list(), color="#3b6ea8")
    ax.set_title("Total sales by product line")
    ax.set_xlabel("Sales (USD)")
    ax.set_ylabel("Product line")
    ax.xaxis.set_major_formatter(thousands_formatter())
    for y, value in enumerate(ordered["total_sales"].to_list()):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.margins(x=0.15)
    return fig


@dg.asset(
    group_name="analytics",
    kinds={"duckdb", "parquet", "csv"},
    deps=["duckdb_table"],
    retry_policy=FILE_LOCK_RETRY,
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
    with timed(context.log, "summaries") as timing:
        with duckdb_reader.get_connection() as conn:
            tables = compute_summaries(conn, table, settings.analytics.top_n_countries)
            table_total = conn.execute(f"SELECT round(sum(SALES), 2) FROM {table}").fetchone()[0]
        paths = {name: write_table_pair(frame, settings.summary_dir, name) for name, frame in tables.items()}
        chart = save_figure(
            productline_chart(tables["sales_by_productline"]), settings.plots_dir / "sales_by_productline.png"
        )
    totals = {
        name: round(tables[name]["total_sales"].sum(), 2)
        for name in ("sales_by_productline", "sales_by_year")
    }
    consistent = all(abs(total - table_total) < 0.01 for total in totals.values())
    metadata: dict = {name: dg.MetadataValue.md(markdown_table(frame)) for name, frame in tables.items()}
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "sales_by_productline_chart": chart,
            "total_sales": float(table_total),
            "summary_dir": dg.MetadataValue.path(str(settings.summary_dir)),
            "files": dg.MetadataValue.json({n: {k: str(p) for k, p in v.items()} for n, v in paths.items()}),
            "seconds": timing["seconds"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_SUMMARY_TOTALS,
                passed=consistent,
                metadata={
                    "table_total": float(table_total),
                    **{f"{n}_total": float(t) for n, t in totals.items()},
                },
            )
        ],
    )


summary_assets = [summaries]
summary_checks: list = []
