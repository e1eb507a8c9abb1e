"""The `dg.Definitions` of group `ingest` per input mode, merged by `sales_assets.definitions`: the single
CSV (`raw_csv`, `clean_parquet`) or the folder of exports (`raw_export`, `clean_export`, partitioned by
export, with the job that cleans chosen export partitions in one run). A location defines one mode's assets
only, so neither shows never-materialised assets of the other."""

import dagster as dg

from sales_assets.ingest.assets import clean_export, clean_parquet, raw_csv, raw_export

INGEST_EXPORTS_JOB = "ingest_exports"

ingest_exports_job = dg.define_asset_job(
    INGEST_EXPORTS_JOB,
    selection=[clean_export],  # partitioned by EXPORTS_PARTITIONS, as clean_export (Dagster infers it)
    description="Cleans the export partitions of the run (one run for a range of them); when it succeeds, "
    "sensor `warehouse_after_exports` starts `refresh_all`.",
)

single_csv_defs = dg.Definitions(assets=[raw_csv, clean_parquet])
export_folder_defs = dg.Definitions(assets=[raw_export, clean_export], jobs=[ingest_exports_job])


def defs_for(folder_mode: bool) -> dg.Definitions:
    """The group's definitions in folder mode (`SALES_RAW_DIR` set) or single-CSV mode."""
    return export_folder_defs if folder_mode else single_csv_defs
