"""The training data: the `sales` table read in a fixed order, and its digest for lineage."""

from __future__ import annotations

import hashlib

import pandas as pd
from dagster_duckdb import DuckDBResource


def read_sales(duckdb_reader: DuckDBResource) -> pd.DataFrame:
    # A fixed row order makes the split, and so every score, reproducible.
    with duckdb_reader.get_connection() as conn:
        return conn.sql("SELECT * FROM sales ORDER BY ORDERNUMBER, ORDERLINENUMBER, PRODUCTCODE").df()


def frame_sha256(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
