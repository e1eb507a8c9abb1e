"""Dagster definitions of group `warehouse`: the DuckDB `sales` table."""

import dagster as dg

from sales_assets.warehouse.assets import duckdb_table

__all__ = ["defs", "duckdb_table"]

defs = dg.Definitions(assets=[duckdb_table])
