"""Data-quality rules of the clean layer and the asset checks that report them.

`clean_layer_findings` aggregates the Parquet dataset in DuckDB (streamed, within a memory limit);
`check_results` turns its findings into Dagster check results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from sales_assets.parquet_layer import parquet_glob
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


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clean_layer_findings(parquet_dir: Path, settings: Settings) -> dict[str, Finding]:
    """Evaluate every rule on the clean layer's Parquet; each failed finding says what in `problem`.

    The aggregates run in DuckDB, which streams the files within its memory limit.
    """
    ingest = settings.ingest
    config = {"memory_limit": settings.warehouse.memory_limit, "threads": settings.warehouse.threads}
    with duckdb.connect(config=config) as conn:
        quoted_glob = parquet_glob(parquet_dir).replace("'", "''")
        source = f"read_parquet('{quoted_glob}', hive_partitioning = true)"
        columns = [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        required = [*ingest.required_columns, *DERIVED_COLUMNS]
        missing = [c for c in required if c not in columns]
        findings = {
            CHECK_REQUIRED_COLUMNS: Finding(
                not missing,
                {"missing_columns": ", ".join(missing) or "none"}
                | (
                    {"problem": f"clean layer lacks required column(s) {', '.join(missing)}"}
                    if missing
                    else {}
                ),
            )
        }
        if missing:
            for name in CLEAN_PARQUET_CHECKS[1:]:
                findings[name] = Finding(False, {"problem": "not evaluated: required columns are missing"})
            return findings

        small, large = ingest.dealsize_thresholds
        cap = float(ingest.price_cap)
        nulls_sql = ", ".join(f"count(*) - count({_quoted(c)}) AS {_quoted('null:' + c)}" for c in required)
        counts_row = conn.execute(
            f"""
            SELECT count(*) AS rows, {nulls_sql},
                   count_if(PRICEEACH < {cap} AND abs(SALES - QUANTITYORDERED * PRICEEACH) > {SALES_TOLERANCE})
                       AS arithmetic,
                   count_if(PRICEEACH < {cap}) AS uncapped,
                   count_if(DEALSIZE IS DISTINCT FROM CASE WHEN SALES < {small} THEN 'Small'
                                                           WHEN SALES < {large} THEN 'Medium'
                                                           ELSE 'Large' END) AS dealsize,
                   count_if(ORDERDATE < ?::TIMESTAMP OR ORDERDATE > ?::TIMESTAMP) AS dates,
                   min(ORDERDATE) AS first_date, max(ORDERDATE) AS last_date
            FROM {source}
            """,
            [ingest.min_order_date, ingest.max_order_date],
        )
        names = [d[0] for d in counts_row.description]
        counts = dict(zip(names, counts_row.fetchone(), strict=True))

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
