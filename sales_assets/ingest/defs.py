"""The `dg.Definitions` of group `ingest`, merged by `sales_assets.definitions`."""

import dagster as dg

from sales_assets.ingest.assets import clean_parquet, raw_csv

defs = dg.Definitions(assets=[raw_csv, clean_parquet])

# The per-kind lists `sales_assets.definitions` reads until it merges each group's `defs`.
assets = [raw_csv, clean_parquet]
asset_checks: list = []
jobs: list = []
schedules: list = []
sensors: list = []
