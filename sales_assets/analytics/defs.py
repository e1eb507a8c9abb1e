"""Dagster definitions of group `analytics`: summaries, EDA and drift."""

from sales_assets.analytics.drift_assets import sales_drift
from sales_assets.analytics.eda_assets import eda_assets
from sales_assets.analytics.summaries import summary_assets, summary_checks

assets: list = [*summary_assets, *eda_assets, sales_drift]
asset_checks: list = [*summary_checks]
jobs: list = []
schedules: list = []
sensors: list = []
