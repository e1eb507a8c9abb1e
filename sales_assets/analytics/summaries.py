"""SALES totals, averages and counts by product line, top countries, year and month, computed in DuckDB,
and the bar chart of sales by product line that the `summaries` asset shows."""

from typing import Any

import duckdb
import polars as pl

from sales_assets.metadata import pyplot, thousands_formatter

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
