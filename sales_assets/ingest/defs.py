"""The `dg.Definitions` of group `ingest`, merged by `sales_assets.definitions`."""

import dagster as dg

from sales_assets.ingest.assets import clean_parquet, raw_csv

defs = dg.Definitions(assets=[raw_csv, clean_parquet])
