"""Assets of group `warehouse`: the DuckDB `sales` table, rebuilt from the clean Parquet layer."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from sales_assets.io import staged_database
from sales_assets.metadata import path_metadata, timed
from sales_assets.resources import DUCKDB_WRITER_POOL, SalesSettingsResource
from sales_assets.warehouse.loading import replace_sales_table, table_columns

GROUP = "warehouse"


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

    This asset is the only writer of the DuckDB file (pool `duckdb_writer`); every other asset opens it
    read-only. The table is built in a new file renamed over the old one, so readers never wait on the
    writer's lock and see the old table or the new one."""
    settings = sales_settings.get()
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    table = settings.warehouse.table
    with (
        timed(context.log, f"load {table} into {settings.duckdb_path}") as timing,
        staged_database(settings.duckdb_path) as build,
    ):
        builder = DuckDBResource(database=str(build), connection_config=duckdb.connection_config)
        with builder.get_connection() as conn:
            rows = replace_sales_table(conn, settings.parquet_dir, table)
            columns = table_columns(conn, table)
    context.log.info(f"{table}: {rows:,} rows, {len(columns)} columns")
    return dg.MaterializeResult(
        metadata={
            "database": path_metadata(settings, settings.duckdb_path),
            "table": table,
            "dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, dtype) for name, dtype in columns]
            ),
            "seconds": timing["seconds"],
        }
    )
