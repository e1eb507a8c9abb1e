"""Data-quality rules of the clean layer and the asset checks that report them.

`clean_layer_findings` is plain Polars over the Parquet dataset (lazy, so it streams on large data);
`check_results` turns its findings into Dagster check results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from sales_assets.settings import Settings

CHECK_REQUIRED_COLUMNS = "required_columns_present"
CHECK_ROW_COUNT = "row_count_positive"
CHECK_NO_NULLS = "no_nulls_in_required_columns"
CHECK_SALES_ARITHMETIC = "sales_equals_quantity_times_price"
CHECK_DEALSIZE = "dealsize_matches_sales_thresholds"
CHECK_DATES = "order_dates_in_range"

SALES_TOLERANCE = 0.01
DERIVED_COLUMNS = ("YEAR", "MONTH")

_SPECS = {
    CHECK_REQUIRED_COLUMNS: (True, "Every required column (and YEAR, MONTH) is in the clean layer."),
    CHECK_ROW_COUNT: (True, "The clean layer has at least one row."),
    CHECK_NO_NULLS: (True, "No nulls in the columns downstream assets use."),
    CHECK_SALES_ARITHMETIC: (
        False,
        "SALES = QUANTITYORDERED x PRICEEACH within a cent where PRICEEACH is below the cap.",
    ),
    CHECK_DEALSIZE: (
        False,
        "DEALSIZE agrees with the SALES thresholds (Small < 3,000 <= Medium < 7,000 <= Large).",
    ),
    CHECK_DATES: (False, "Every ORDERDATE lies inside the configured date range."),
}
CLEAN_PARQUET_CHECKS = tuple(_SPECS)
BLOCKING_CHECKS = frozenset(name for name, (blocking, _) in _SPECS.items() if blocking)
CLEAN_PARQUET_CHECK_SPECS = [
    dg.AssetCheckSpec(name, asset="clean_parquet", blocking=blocking, description=text)
    for name, (blocking, text) in _SPECS.items()
]
SEVERITY = {
    CHECK_REQUIRED_COLUMNS: dg.AssetCheckSeverity.ERROR,
    CHECK_ROW_COUNT: dg.AssetCheckSeverity.ERROR,
    CHECK_NO_NULLS: dg.AssetCheckSeverity.ERROR,
    CHECK_SALES_ARITHMETIC: dg.AssetCheckSeverity.ERROR,
    CHECK_DEALSIZE: dg.AssetCheckSeverity.WARN,
    CHECK_DATES: dg.AssetCheckSeverity.ERROR,
}


@dataclass
class Finding:
    passed: bool
    metadata: dict = field(default_factory=dict)


def clean_layer_findings(frame: pl.LazyFrame, settings: Settings) -> dict[str, Finding]:
    """Evaluate every rule on the clean layer; each finding says what failed in its `problem`."""
    ingest = settings.ingest
    columns = frame.collect_schema().names()
    required = [*ingest.required_columns, *DERIVED_COLUMNS]
    missing = [c for c in required if c not in columns]
    findings = {
        CHECK_REQUIRED_COLUMNS: Finding(
            not missing,
            {"missing_columns": ", ".join(missing) or "none"}
            | ({"problem": f"clean layer lacks required column(s) {', '.join(missing)}"} if missing else {}),
        )
    }
    if missing:
        for name in CLEAN_PARQUET_CHECKS[1:]:
            findings[name] = Finding(False, {"problem": "not evaluated: required columns are missing"})
        return findings

    small, large = ingest.dealsize_thresholds
    quantity, price, sales = pl.col("QUANTITYORDERED"), pl.col("PRICEEACH"), pl.col("SALES")
    expected_dealsize = (
        pl.when(sales < small)
        .then(pl.lit("Small"))
        .when(sales < large)
        .then(pl.lit("Medium"))
        .otherwise(pl.lit("Large"))
    )
    low = pl.lit(ingest.min_order_date).str.to_datetime("%Y-%m-%d")
    high = pl.lit(ingest.max_order_date).str.to_datetime("%Y-%m-%d")
    counts = (
        frame.select(
            pl.len().alias("rows"),
            *[pl.col(c).null_count().alias(f"null:{c}") for c in required],
            ((price < ingest.price_cap) & ((sales - quantity * price).abs() > SALES_TOLERANCE))
            .sum()
            .alias("arithmetic"),
            (price < ingest.price_cap).sum().alias("uncapped"),
            (pl.col("DEALSIZE") != expected_dealsize).sum().alias("dealsize"),
            ((pl.col("ORDERDATE") < low) | (pl.col("ORDERDATE") > high)).sum().alias("dates"),
            pl.col("ORDERDATE").min().alias("first_date"),
            pl.col("ORDERDATE").max().alias("last_date"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )

    rows = counts["rows"]
    nulls = {c: counts[f"null:{c}"] for c in required if counts[f"null:{c}"]}
    findings[CHECK_ROW_COUNT] = Finding(
        rows > 0, {"rows": rows} | ({} if rows else {"problem": "clean layer is empty"})
    )
    findings[CHECK_NO_NULLS] = Finding(
        not nulls,
        {"null_counts": dg.MetadataValue.json(nulls)}
        | ({"problem": f"nulls in {', '.join(f'{c} ({n})' for c, n in nulls.items())}"} if nulls else {}),
    )
    findings[CHECK_SALES_ARITHMETIC] = Finding(
        counts["arithmetic"] == 0,
        {"rows_checked": counts["uncapped"], "rows_off_by_more_than_a_cent": counts["arithmetic"]},
    )
    findings[CHECK_DEALSIZE] = Finding(counts["dealsize"] == 0, {"inconsistent_rows": counts["dealsize"]})
    findings[CHECK_DATES] = Finding(
        counts["dates"] == 0,
        {
            "rows_out_of_range": counts["dates"],
            "first_order_date": str(counts["first_date"]),
            "last_order_date": str(counts["last_date"]),
            "allowed_range": f"{ingest.min_order_date} .. {ingest.max_order_date}",
        },
    )
    return findings


def check_results(findings: dict[str, Finding]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=name,
            asset_key="clean_parquet",
            passed=finding.passed,
            severity=SEVERITY[name],
            metadata=finding.metadata,
        )
        for name, finding in findings.items()
    ]
