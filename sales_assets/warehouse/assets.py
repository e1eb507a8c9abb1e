"""Assets of group `warehouse`: the DuckDB `sales` table, rebuilt from the clean layer of the configured
source: the single CSV's Parquet (`clean_parquet`, the default) or, with `SALES_RAW_DIR` set, the clean
partitions of the folder of exports (`clean_export`), one row per order line, the newest export winning.

The settings decide which layer it reads. Its drawn upstream is `clean_parquet` in single-CSV mode and
none in folder mode (`sales_assets.definitions`): an edge from the partitioned `clean_export` would put
that asset into selections such as `dagster asset materialize --select +duckdb_table`, and a run cannot
hold export partitions and unpartitioned assets together (the CLI stops with "Asset has partitions"). The
folder-mode order is kept by the automation instead: `warehouse_after_exports` starts the refresh after
the export run succeeds. In folder mode the exports it reads are the files in the folder now: each file's
current key must have been cleaned (else the run stops naming the keys), and a key whose file is gone
or holds other bytes is not read.
"""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.export_layer import newest_last, partition_glob, read_manifest, scan_exports
from sales_assets.io import staged_database
from sales_assets.metadata import path_metadata, table_metadata, timed
from sales_assets.resources import DUCKDB_WRITER_POOL, SalesSettingsResource
from sales_assets.settings import Settings
from sales_assets.warehouse.loading import (
    ExportsLoad,
    record_exports_used,
    replace_sales_table,
    replace_sales_table_from_exports,
    table_columns,
)

GROUP = "warehouse"


def current_export_partitions(settings: Settings) -> list[tuple[str, str, str]]:
    """(key, Parquet glob, content sha256) of every export now in `SALES_RAW_DIR`, oldest first (see
    `sales_assets.export_layer`). Raises dg.Failure when the folder has no export or a file's current
    content was not cleaned yet (the data would be wrong without it), naming the keys and what to run."""
    raw_dir = settings.raw_dir_path
    try:
        exports = scan_exports(raw_dir, settings.ingest.export_glob)
    except FileNotFoundError as error:
        raise dg.Failure(description=str(error)) from error
    if not exports:
        raise dg.Failure(
            description=f"SALES_RAW_DIR {raw_dir} has no file matching {settings.ingest.export_glob!r}"
        )
    manifests = {e.key: read_manifest(settings.exports_clean_dir, e.key) for e in exports}
    pending = sorted(key for key, manifest in manifests.items() if manifest is None)
    if pending:
        raise dg.Failure(
            description=f"{len(pending)} export(s) in {raw_dir} not cleaned yet: {', '.join(pending[:10])}; "
            "switch on sensor raw_export_files (or run the daily schedule), or materialise those "
            "partitions of clean_export, then this asset"
        )
    return [
        (m.key, partition_glob(settings.exports_clean_dir, m.key), m.sha256)
        for m in newest_last(list(manifests.values()))
    ]


def exports_metadata(load: ExportsLoad) -> dict:
    """The folder-mode metadata: partitions used (oldest first), rows per partition, replaced lines."""
    by_partition = pl.DataFrame(
        {
            "partition": [p.key for p in load.partitions],
            "rank": [p.rank for p in load.partitions],
            "rows_in": [p.rows_in for p in load.partitions],
            "rows_kept": [p.rows_kept for p in load.partitions],
        },
        schema={"partition": pl.String, "rank": pl.Int64, "rows_in": pl.Int64, "rows_kept": pl.Int64},
    )
    return {
        "source": "folder of exports",
        "partitions_used": len(load.partitions),
        "rows_by_partition": table_metadata(by_partition),
        "order_lines": load.order_lines,
        "replaced_lines": load.replaced_lines,
    }


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb"},
    deps=["clean_parquet"],
    pool=DUCKDB_WRITER_POOL,
)
def duckdb_table(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Table `sales` in `$SALES_DATA_DIR/duckdb/sales.duckdb`, replaced from the clean Parquet layer.

    With `SALES_RAW_DIR` set, the table is the union of the clean partitions of the exports now in that
    folder (`clean_export`), one row per order line (ORDERNUMBER, ORDERLINENUMBER) from the newest export
    that has it (newest: file modification time when cleaned, then name); the metadata names the
    partitions used, their rows in and kept, and `replaced_lines`, the order lines found in more than one
    export; table `sales_exports` beside it records those partitions (rank, key, sha256, rows) for the
    training lineage and the dashboard. It stops when an export in the folder was not cleaned yet.

    This asset is the only writer of the DuckDB file (pool `duckdb_writer`); every other asset opens it
    read-only. The table is built in a new file renamed over the old one, so readers never wait on the
    writer's lock and see the old table or the new one."""
    settings = sales_settings.get()
    partitions = current_export_partitions(settings) if settings.raw_dir_path is not None else None
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    table = settings.warehouse.table
    with (
        timed(context.log, f"load {table} into {settings.duckdb_path}") as timing,
        staged_database(settings.duckdb_path) as build,
    ):
        builder = DuckDBResource(database=str(build), connection_config=duckdb.connection_config)
        with builder.get_connection() as conn:
            if partitions is None:
                rows, source = replace_sales_table(conn, settings.parquet_dir, table), {}
            else:
                load = replace_sales_table_from_exports(conn, [(k, glob) for k, glob, _ in partitions], table)
                record_exports_used(conn, load, [digest for _, _, digest in partitions], table)
                rows, source = load.rows, exports_metadata(load)
            columns = table_columns(conn, table)
    context.log.info(f"{table}: {rows:,} rows, {len(columns)} columns")
    if source:
        context.log.info(
            f"from {source['partitions_used']} export(s), {source['replaced_lines']:,} order line(s) replaced"
        )
    return dg.MaterializeResult(
        metadata={
            **source,
            "database": path_metadata(settings, settings.duckdb_path),
            "table": table,
            "dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, dtype) for name, dtype in columns]
            ),
            "seconds": timing["seconds"],
        }
    )
