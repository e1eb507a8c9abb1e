"""The training data: a reproducible sample of the `sales` table read straight from DuckDB, and the data's
lineage from the digests of what it was built from (no frame is hashed): the clean Parquet layer of the
single CSV, or, with a folder of exports, the export partitions the warehouse recorded beside the table."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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


def data_lineage(parquet_dir: Path, landed_dir: Path) -> dict[str, str | int | None]:
    """Digests of the clean Parquet layer the `sales` table was built from (data_sha256) and of the raw
    export as `raw_csv` landed it (`sales_assets.ingest.source`: the copy `clean_parquet` read, named by
    its sha256), so the lineage names the bytes the data came from even when the configured file changed
    since. `raw_path` is the file the copy was taken from, `raw_copy` the copy; the three are None when
    `landed_dir` holds no current copy whose size still matches its record (nothing is hashed instead)."""
    from sales_assets.ingest.source import InputPathError, current_landed

    layer = resolve_layer(parquet_dir)
    files = sorted(layer.rglob("*.parquet")) if layer.is_dir() else []
    try:
        landed = current_landed(landed_dir)
    except InputPathError:
        landed = None
    return {
        "data_sha256": files_sha256(files, layer),
        "parquet_files": len(files),
        "parquet_dir": str(parquet_dir),
        "raw_path": None if landed is None else str(landed.source),
        "raw_copy": None if landed is None else str(landed.path),
        "raw_sha256": None if landed is None else landed.sha256,
    }


def exports_lineage(
    exports: Sequence[tuple[str, str]], clean_dir: Path, raw_dir: Path | None
) -> dict[str, str | int | list[str] | None]:
    """The lineage of a `sales` table built from a folder of exports, with the keys of `data_lineage`.

    `exports` are the (partition key, content sha256) the warehouse used, oldest first, as it recorded them
    in `sales_exports` beside the table (`sales_assets.warehouse.loading.exports_used`). `data_sha256` is
    the sha256 of one `<key>\t<sha256>\n` line per export in that order: another set of exports, another
    content of any of them or another order of "newest" changes it, and the same folder gives the same
    digest whenever it is computed (it is read from the table's own file, not from the folder now).
    `raw_sha256` is None: there is no single raw file, and the files' digests are what `data_sha256` is
    made of. `exports` lists the keys; `parquet_files` counts the Parquet files of those partitions still
    on disk under `clean_dir` (the layer `parquet_dir` names), `raw_path` is the folder."""
    from sales_assets.export_layer import partition_dir

    digest = hashlib.sha256()
    for key, sha256 in exports:
        digest.update(f"{key}\t{sha256}\n".encode())
    files = 0
    for key, _ in exports:
        layer = resolve_layer(partition_dir(clean_dir, key))
        files += sum(1 for _ in layer.rglob("*.parquet")) if layer.is_dir() else 0
    return {
        "data_sha256": digest.hexdigest(),
        "parquet_files": files,
        "parquet_dir": str(clean_dir),
        "raw_path": str(raw_dir),
        "raw_sha256": None,
        "exports": [key for key, _ in exports],
    }
