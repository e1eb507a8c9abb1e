"""Dagster definitions of group `analytics`: summaries, EDA and drift (the checks are the assets' own
check specs)."""

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

defs = dg.Definitions(
    assets=[
        summaries,
        missing_value_report,
        numeric_descriptive_stats,
        eda_plots,
        iqr_filtered_sales,
        eda_report,
        sales_drift,
    ]
)
