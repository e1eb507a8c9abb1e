"""Dagster definitions of group `timeseries`: the segment catalogue, the per-segment reports (the ALL
partition also reconciles the hierarchy), and the jobs the one-command backfill
(`python -m sales_assets.timeseries.backfill`) runs, as one `defs` object."""

import dagster as dg

from sales_assets.timeseries.assets import ts_risk_reports, ts_segments

ts_segments_job = dg.define_asset_job("ts_segments_job", selection=[ts_segments])
# Partitioned by SEGMENTS_PARTITIONS, as the asset it selects (Dagster infers a job's partitions).
ts_risk_reports_job = dg.define_asset_job("ts_risk_reports_job", selection=[ts_risk_reports])

defs = dg.Definitions(assets=[ts_segments, ts_risk_reports], jobs=[ts_segments_job, ts_risk_reports_job])

# The per-kind lists `sales_assets/definitions.py` flattens until it merges the groups' `defs` objects.
assets: list = list(defs.assets or [])
asset_checks: list = list(defs.asset_checks or [])
jobs: list = list(defs.jobs or [])
schedules: list = []
sensors: list = []
