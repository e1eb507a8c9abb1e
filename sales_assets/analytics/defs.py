"""Dagster definitions of group `analytics`: summaries, EDA and drift."""

import dagster as dg

from sales_assets.analytics.assets import (
    eda_plots,
    eda_report,
    iqr_filtered_sales,
    missing_value_report,
    numeric_descriptive_stats,
    sales_drift,
    summaries,
)

assets: list = [
    summaries,
    missing_value_report,
    numeric_descriptive_stats,
    eda_plots,
    iqr_filtered_sales,
    eda_report,
    sales_drift,
]
defs = dg.Definitions(assets=assets)

# The per-kind lists `sales_assets.definitions` flattens until it merges `defs`; the checks are the
# assets' own check specs, so nothing is listed apart.
asset_checks: list = []
jobs: list = []
schedules: list = []
sensors: list = []
