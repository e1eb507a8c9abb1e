"""The one Definitions object of the code location: every group's assets, checks, jobs, schedules and
sensors, the automation over the whole graph, and the resources they share."""

from __future__ import annotations

import dagster as dg

from sales_assets import automation
from sales_assets.analytics import defs as analytics
from sales_assets.ingest import defs as ingest
from sales_assets.ml import defs as ml
from sales_assets.resources import build_resources
from sales_assets.timeseries import defs as timeseries
from sales_assets.warehouse import defs as warehouse

GROUPS = (ingest, analytics, ml, timeseries)

defs = dg.Definitions(
    assets=[a for group in GROUPS for a in group.assets] + list(warehouse.defs.assets or []),
    asset_checks=[c for group in GROUPS for c in group.asset_checks],
    jobs=[j for group in GROUPS for j in group.jobs] + automation.jobs,
    schedules=[s for group in GROUPS for s in group.schedules] + automation.schedules,
    sensors=[s for group in GROUPS for s in group.sensors] + automation.sensors,
    resources=build_resources(),
)
