"""The clean layer's data-quality rules, on tiny Parquet datasets with known violations."""

import datetime as dt

import polars as pl

from sales_assets.ingest.quality import (
    BLOCKING_CHECKS,
    CHECK_DATES,
    CHECK_DEALSIZE,
    CHECK_NO_NULLS,
    CHECK_REQUIRED_COLUMNS,
    CHECK_ROW_COUNT,
    CHECK_SALES_ARITHMETIC,
    check_results,
    clean_layer_findings,
)
from sales_assets.settings import Settings

ROW = {
    "ORDERNUMBER": 1,
    "QUANTITYORDERED": 30,
    "PRICEEACH": 95.7,
    "ORDERLINENUMBER": 1,
    "SALES": 2871.0,
    "ORDERDATE": dt.datetime(2003, 2, 24),
    "STATUS": "Shipped",
    "QTR_ID": 1,
    "MONTH_ID": 2,
    "YEAR_ID": 2003,
    "PRODUCTLINE": "Motorcycles",
    "MSRP": 95.0,
    "PRODUCTCODE": "S10_1678",
    "CUSTOMERNAME": "Land of Toys Inc.",
    "COUNTRY": "USA",
    "TERRITORY": "NA",
    "DEALSIZE": "Small",
    "MONTH": 2,
    "YEAR": 2003,
}


def findings_for(tmp_path, rows: list[dict]):
    pl.DataFrame(rows).write_parquet(tmp_path / "pq", partition_by="YEAR")
    return clean_layer_findings(tmp_path / "pq", Settings())


def test_a_good_row_passes_every_rule(tmp_path):
    findings = findings_for(tmp_path, [ROW])
    assert all(f.passed for f in findings.values()), findings
    assert findings[CHECK_ROW_COUNT].metadata["rows"] == 1


def test_each_rule_counts_its_violations(tmp_path):
    rows = [
        ROW,
        ROW | {"SALES": 2900.0},  # 30 x 95.7 is 2,871: off by more than a cent
        ROW | {"PRICEEACH": 100.0, "SALES": 7100.0},  # capped price: arithmetic not checked; DEALSIZE wrong
        ROW | {"ORDERDATE": dt.datetime(1999, 1, 1)},
        ROW | {"COUNTRY": None},
    ]
    findings = findings_for(tmp_path, rows)
    assert findings[CHECK_SALES_ARITHMETIC].metadata["rows_off_by_more_than_a_cent"] == 1
    assert findings[CHECK_SALES_ARITHMETIC].metadata["rows_checked"] == 4
    assert findings[CHECK_DEALSIZE].metadata["inconsistent_rows"] == 1
    assert findings[CHECK_DATES].metadata["rows_out_of_range"] == 1
    assert findings[CHECK_NO_NULLS].metadata["problem"] == "nulls in COUNTRY (1)"
    results = {r.check_name: r for r in check_results(findings)}
    assert not results[CHECK_NO_NULLS].passed and CHECK_NO_NULLS in BLOCKING_CHECKS
    assert CHECK_DEALSIZE not in BLOCKING_CHECKS


def test_missing_required_columns_are_listed_and_block(tmp_path):
    rows = [{k: v for k, v in ROW.items() if k not in ("SALES", "DEALSIZE")}]
    findings = findings_for(tmp_path, rows)
    assert not findings[CHECK_REQUIRED_COLUMNS].passed
    assert (
        findings[CHECK_REQUIRED_COLUMNS].metadata["problem"]
        == "clean layer lacks required column(s) SALES, DEALSIZE"
    )
    assert CHECK_REQUIRED_COLUMNS in BLOCKING_CHECKS
    assert not any(f.passed for f in findings.values())
