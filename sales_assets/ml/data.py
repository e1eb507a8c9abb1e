"""The training data: a reproducible sample of the `sales` table read straight from DuckDB, and the data's
lineage from the digests of the files it was built from (no frame is hashed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sales_assets.io import sha256_file
from sales_assets.parquet_layer import resolve_layer

if TYPE_CHECKING:
    import pandas as pd
    from dagster_duckdb import DuckDBResource

# A fixed row order makes the split, and so every score, reproducible.
ROW_ORDER = "ORDERNUMBER, ORDERLINENUMBER, PRODUCTCODE"


@dataclass(frozen=True)
class TrainingData:
    frame: pd.DataFrame
    table_rows: int
    sampled: bool
    sample_sql: str


def read_training_sample(
    duckdb_reader: DuckDBResource, max_rows: int, seed: int, table: str = "sales"
) -> TrainingData:
    """At most `max_rows` rows of `table` in a fixed order. A larger table is sampled inside DuckDB
    (reservoir sampling, `REPEATABLE (seed)`, on one thread since DuckDB's repeatable samples are only
    reproducible single-threaded), so the whole table never reaches Python. Raises ValueError on max_rows < 1."""
    if max_rows < 1:
        raise ValueError(f"settings.ml.max_training_rows must be >= 1, got {max_rows}")
    with duckdb_reader.get_connection() as conn:
        table_rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        sampled = table_rows > max_rows
        source = (
            f"(SELECT * FROM {table} USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE ({int(seed)}))"
            if sampled
            else table
        )
        sql = f"SELECT * FROM {source} ORDER BY {ROW_ORDER}"
        if sampled:
            conn.execute("SET threads TO 1")
        frame = conn.execute(sql).df()
    return TrainingData(frame, int(table_rows), sampled, sql)


def files_sha256(paths: list[Path], root: Path) -> str:
    """One digest over files: sha256 of each file's path (relative to `root`) and content digest, in path
    order, so renaming, adding, removing or changing any file changes it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(f"{path.relative_to(root).as_posix()}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def data_lineage(parquet_dir: Path, raw_csv: Path) -> dict[str, str | int | None]:
    """Digests of the clean Parquet layer the `sales` table was built from (data_sha256) and of the raw
    export (None when it is not at the configured path, e.g. with a folder of exports)."""
    layer = resolve_layer(parquet_dir)
    files = sorted(layer.rglob("*.parquet")) if layer.is_dir() else []
    return {
        "data_sha256": files_sha256(files, layer),
        "parquet_files": len(files),
        "parquet_dir": str(parquet_dir),
        "raw_path": str(raw_csv),
        "raw_sha256": sha256_file(raw_csv) if raw_csv.is_file() else None,
    }
