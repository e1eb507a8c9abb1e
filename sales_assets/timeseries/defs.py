"""Dagster definitions of group `timeseries`: the segment catalogue, the per-segment reports, and the jobs
the one-command backfill (`python -m sales_assets.timeseries.backfill`) runs."""

import dagster as dg

from sales_assets.timeseries.assets import ts_risk_reports, ts_segments
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS

ts_segments_job = dg.define_asset_job("ts_segments_job", selection=[ts_segments])
ts_risk_reports_job = dg.define_asset_job(
    "ts_risk_reports_job", selection=[ts_risk_reports], partitions_def=SEGMENTS_PARTITIONS
)

assets: list = [ts_segments, ts_risk_reports]
asset_checks: list = []
jobs: list = [ts_segments_job, ts_risk_reports_job]
schedules: list = []
sensors: list = []
