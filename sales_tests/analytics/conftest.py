"""A tiny warehouse for the analytics tests: a raw CSV with the export's blanks and a DuckDB `sales`
table built from the same rows as the warehouse contract describes, without running the ingest group."""

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from sales_assets.analytics.assets import (
    eda_plots,
    eda_report,
    iqr_filtered_sales,
    missing_value_report,
    numeric_descriptive_stats,
    sales_drift,
)
from sales_assets.settings import SOURCE_COLUMNS, Settings

ROWS = 240
# Every analytics asset that reads the warehouse and the raw CSV, without `summaries` (ingest tests it).
EDA_AND_DRIFT = [
    missing_value_report,
    numeric_descriptive_stats,
    eda_plots,
    iqr_filtered_sales,
    eda_report,
    sales_drift,
]


@dataclass(frozen=True)
class TinyWarehouse:
    data_dir: Path
    raw_csv: Path
    raw: pl.DataFrame  # as exported: strings, blanks as ""
    sales: pl.DataFrame  # the `sales` table


def source_rows(rows: int, seed: int) -> pl.DataFrame:
    """`rows` export rows as strings and numbers in the source column order: six quarters, blanks in
    ADDRESSLINE2, STATE and POSTALCODE, two quantity outliers and a quantity drift in the last quarter."""
    rng = np.random.default_rng(seed)
    index = np.arange(rows)
    # Six quarters, 2003-Q1 to 2004-Q2; the last one orders larger quantities (drift to detect).
    month_index = np.sort(rng.integers(0, 18, rows))
    year, month = 2003 + month_index // 12, month_index % 12 + 1
    quantity = np.where(month_index >= 15, rng.integers(45, 71, rows), rng.integers(20, 51, rows))
    quantity[[5, 77]] = [95, 97]  # two IQR outliers
    price = np.minimum(np.round(rng.uniform(30, 110, rows), 2), 100.0)
    sales = np.round(quantity * price * np.where(price == 100, 1.4, 1.0), 2)
    day = rng.integers(1, 29, rows)
    return pl.DataFrame(
        {
            "ORDERNUMBER": 10100 + index // 3,
            "QUANTITYORDERED": quantity,
            "PRICEEACH": price,
            "ORDERLINENUMBER": index % 3 + 1,
            "SALES": sales,
            "ORDERDATE": [f"{m}/{d}/{y} 0:00" for m, d, y in zip(month, day, year, strict=True)],
            "STATUS": rng.choice(["Shipped", "Cancelled"], rows, p=[0.9, 0.1]),
            "QTR_ID": (month - 1) // 3 + 1,
            "MONTH_ID": month,
            "YEAR_ID": year,
            "PRODUCTLINE": rng.choice(["Classic Cars", "Ships", "Planes"], rows),
            "MSRP": rng.choice([60, 95, 118, 214], rows),
            "PRODUCTCODE": rng.choice(["S10_1678", "S18_2238", "S24_3856"], rows),
            "CUSTOMERNAME": rng.choice(["Land of Toys Inc.", "Reims Collectables"], rows),
            "PHONE": "2125557818",
            "ADDRESSLINE1": "897 Long Airport Avenue",
            "ADDRESSLINE2": np.where(index % 10 == 0, "Level 3", ""),
            "CITY": rng.choice(["NYC", "Reims", "Málaga"], rows),
            "STATE": np.where(index % 3 == 0, "", "NY"),
            "POSTALCODE": np.where(index % 20 == 0, "", "10022"),
            "COUNTRY": rng.choice(["USA", "France"], rows),
            "TERRITORY": rng.choice(["NA", "EMEA"], rows),
            "CONTACTLASTNAME": "Yu",
            "CONTACTFIRSTNAME": "Kwai",
            "DEALSIZE": np.where(sales < 3000, "Small", np.where(sales < 7000, "Medium", "Large")),
        }
    ).select(SOURCE_COLUMNS)


def warehouse_table(source: pl.DataFrame) -> pl.DataFrame:
    """The `sales` table the warehouse contract describes for these rows."""
    order_date = pl.col("ORDERDATE").str.to_datetime("%m/%d/%Y %H:%M")
    return source.drop("ADDRESSLINE2").with_columns(
        order_date,
        pl.col("STATE", "POSTALCODE").replace("", "Unknown"),
        pl.col("MSRP").cast(pl.Float64),
        order_date.dt.year().cast(pl.Int64).alias("YEAR"),
        order_date.dt.month().cast(pl.Int64).alias("MONTH"),
    )


def build_tiny_warehouse(data_dir: Path, rows: int = ROWS, seed: int = 7) -> TinyWarehouse:
    settings = Settings(data_dir=data_dir)
    source = source_rows(rows, seed)
    raw_csv = settings.raw_csv_path
    raw_csv.parent.mkdir(parents=True, exist_ok=True)
    # The export's own code page, so the encoding detection and transcoding run too.
    raw_csv.write_bytes(source.write_csv().encode("cp850"))
    sales = warehouse_table(source)
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.register("frame", sales.to_arrow())
        conn.execute("CREATE TABLE sales AS SELECT * FROM frame")
    return TinyWarehouse(data_dir=data_dir, raw_csv=raw_csv, raw=source.cast(pl.String), sales=sales)


@pytest.fixture(scope="module")
def tiny_warehouse(tmp_path_factory) -> TinyWarehouse:
    return build_tiny_warehouse(tmp_path_factory.mktemp("analytics-data"))
