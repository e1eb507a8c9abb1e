"""A deterministic generator of sales exports shaped like the real Kaggle file, quirks included.

It is the project's own default input: same 25 columns, a few names with non-ASCII letters written in DOS
code page 850, blank ADDRESSLINE2/STATE/POSTALCODE at about the real rates, TERRITORY `NA` for North
America, `M/D/YYYY H:MM` dates over 2003-01..2005-05 with November peaks, PRICEEACH capped at 100 while SALES
uses the true unit price, one MSRP per product code, DEALSIZE from SALES and the real STATUS mix. Rows are
produced and written in chunks, so five million rows take bounded memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sales_assets.io import atomic_path
from sales_assets.settings import SOURCE_COLUMNS, Settings

ENCODING = "cp850"
FIRST_DAY = dt.date(2003, 1, 6)
LAST_DAY = dt.date(2005, 5, 31)

# Product lines with the real number of products and a typical MSRP range.
PRODUCT_LINES: dict[str, tuple[int, int, int]] = {
    "Classic Cars": (37, 35, 214),
    "Vintage Cars": (24, 33, 170),
    "Motorcycles": (13, 40, 193),
    "Planes": (12, 49, 157),
    "Trucks and Buses": (11, 58, 136),
    "Ships": (9, 54, 122),
    "Trains": (3, 58, 100),
}
PRODUCT_CODE_PREFIXES = ("S10", "S12", "S18", "S24", "S32", "S50", "S700", "S72")

# (country, territory, share of customers, has a state, has a postal code)
COUNTRIES: tuple[tuple[str, str, float, bool, bool], ...] = (
    ("USA", "NA", 0.33, True, True),
    ("Canada", "NA", 0.04, True, True),
    ("Spain", "EMEA", 0.09, False, True),
    ("France", "EMEA", 0.13, False, True),
    ("Australia", "APAC", 0.06, True, True),
    ("UK", "EMEA", 0.05, False, True),
    ("Italy", "EMEA", 0.04, False, True),
    ("Finland", "EMEA", 0.03, False, True),
    ("Norway", "EMEA", 0.03, False, True),
    ("Singapore", "APAC", 0.02, False, True),
    ("Denmark", "EMEA", 0.02, False, True),
    ("Germany", "EMEA", 0.03, False, True),
    ("Sweden", "EMEA", 0.02, False, True),
    ("Austria", "EMEA", 0.02, False, True),
    ("Japan", "Japan", 0.02, True, True),
    ("Belgium", "EMEA", 0.01, False, True),
    ("Switzerland", "EMEA", 0.01, False, True),
    ("Philippines", "Japan", 0.02, False, True),
    ("Ireland", "EMEA", 0.02, False, False),
)
# The real file's non-ASCII letters, each a character of code page 850.
NON_ASCII_NAMES = (
    ("CUSTOMERNAME", "Berglunds snabbköp"),
    ("ADDRESSLINE1", "Berguvsvägen  8"),
    ("CONTACTFIRSTNAME", "Martín"),
    ("ADDRESSLINE1", "Rambla de Cataluña, 23"),
    ("CITY", "Bräcke"),
)
STATUS_MIX = {
    "Shipped": 2617,
    "Cancelled": 60,
    "Resolved": 47,
    "On Hold": 44,
    "In Process": 41,
    "Disputed": 14,
}
# Relative order volume by calendar month (the real series peaks in November).
MONTH_WEIGHTS = np.array([1.0, 0.95, 1.0, 0.95, 1.05, 0.9, 0.9, 1.0, 1.2, 1.9, 3.6, 1.35])
LINES_PER_ORDER = 9.2
NUM_CUSTOMERS = 92
FIRST_ORDER_NUMBER = 10100
LAST_NAMES = (
    "Yu",
    "Henriot",
    "Da Cunha",
    "Young",
    "Brown",
    "Hirano",
    "Frick",
    "Smith",
    "Ashworth",
    "Larsson",
)
FIRST_NAMES = ("Kwai", "Paul", "Daniel", "Julie", "Michael", "Juri", "Anna", "Victoria", "Rachel", "Maria")
NAME_WORDS = (
    "Toys",
    "Gifts",
    "Collectables",
    "Models",
    "Replicas",
    "Classics",
    "Diecast",
    "Auto",
    "Souvenirs",
)


@dataclass(frozen=True)
class Catalog:
    """Products and customers shared by every chunk, so a product has one MSRP throughout."""

    product_line: np.ndarray
    product_code: np.ndarray
    msrp: np.ndarray
    customers: pl.DataFrame
    customer_weights: np.ndarray


def build_catalog(seed: int) -> Catalog:
    rng = np.random.default_rng([seed, 0])
    lines, codes, msrps = [], [], []
    for line, (count, low, high) in PRODUCT_LINES.items():
        for _ in range(count):
            prefix = PRODUCT_CODE_PREFIXES[rng.integers(len(PRODUCT_CODE_PREFIXES))]
            codes.append(f"{prefix}_{rng.integers(1000, 9999)}")
            lines.append(line)
            msrps.append(int(rng.integers(low, high + 1)))
    # Codes must be unique for "one MSRP per product code" to hold.
    codes = [f"{code}{'' if codes.index(code) == i else i}" for i, code in enumerate(codes)]

    shares = np.array([c[2] for c in COUNTRIES])
    country_index = rng.choice(len(COUNTRIES), size=NUM_CUSTOMERS, p=shares / shares.sum())
    country_index[: len(COUNTRIES)] = np.arange(len(COUNTRIES))  # every country has a customer
    records = []
    for i, ci in enumerate(country_index):
        country, territory, _, has_state, has_postal = COUNTRIES[ci]
        words = rng.choice(NAME_WORDS, size=2, replace=False)
        records.append(
            {
                "CUSTOMERNAME": f"{words[0]} & {words[1]} of {country} {i}",
                "PHONE": f"{rng.integers(100, 999)}.{rng.integers(100, 999)}.{rng.integers(1000, 9999)}",
                "ADDRESSLINE1": f"{rng.integers(1, 999)} {words[1]} Street",
                "ADDRESSLINE2": f"Level {rng.integers(1, 20)}",
                "CITY": f"{country} City {i}",
                "STATE": f"ST{rng.integers(1, 50)}" if has_state else "",
                "POSTALCODE": f"{rng.integers(10000, 99999)}" if has_postal else "",
                "COUNTRY": country,
                "TERRITORY": territory,
                "CONTACTLASTNAME": LAST_NAMES[(i * 7) % len(LAST_NAMES)],
                "CONTACTFIRSTNAME": FIRST_NAMES[(i * 3) % len(FIRST_NAMES)],
            }
        )
    weights = rng.gamma(1.2, 1.0, size=NUM_CUSTOMERS)
    # Blanks belong to customers, as in the real file, and are spread so that their rows make up the real
    # shares: ADDRESSLINE2 is filled on 10.7% of rows (blank on 2,521 of 2,823), POSTALCODE blank on 2.7%.
    order_share = weights / weights.sum()
    postal_blank = {i for i, record in enumerate(records) if not record["POSTALCODE"]}
    postal_blank |= _customers_covering(order_share, 0.027 - order_share[list(postal_blank)].sum(), rng)
    with_address2 = _customers_covering(order_share, 0.107, rng)
    for i, record in enumerate(records):
        record["POSTALCODE"] = "" if i in postal_blank else record["POSTALCODE"]
        record["ADDRESSLINE2"] = record["ADDRESSLINE2"] if i in with_address2 else ""
    # The non-ASCII names go to busy customers so that even a small sample shows every one of them.
    for (column, value), customer in zip(NON_ASCII_NAMES, np.argsort(-weights), strict=False):
        records[customer][column] = value
    return Catalog(
        product_line=np.array(lines),
        product_code=np.array(codes),
        msrp=np.array(msrps, dtype=np.int64),
        # Blank fields are written as nothing between two commas, as in the real export.
        customers=pl.DataFrame(records).with_columns(pl.all().replace("", None)),
        customer_weights=weights / weights.sum(),
    )


def _customers_covering(order_share: np.ndarray, target: float, rng: np.random.Generator) -> set[int]:
    """Customers, picked at random, whose combined share of orders comes as close to `target` as it can
    without passing it."""
    chosen, covered = set(), 0.0
    for customer in rng.permutation(order_share.size):
        if covered + order_share[customer] <= target:
            chosen.add(int(customer))
            covered += order_share[customer]
    return chosen


def _day_quantiles() -> tuple[np.ndarray, np.ndarray]:
    """Every day of the range and the cumulative share of orders up to it (seasonal, slowly growing)."""
    days = np.arange(np.datetime64(FIRST_DAY), np.datetime64(LAST_DAY) + 1)
    months = days.astype("datetime64[M]").astype(int) % 12
    years = days.astype("datetime64[Y]").astype(int) + 1970
    weight = MONTH_WEIGHTS[months] * (1.0 + 0.25 * (years - 2003))
    cumulative = np.cumsum(weight)
    return days, cumulative / cumulative[-1]


def generate_chunk(
    catalog: Catalog,
    seed: int,
    chunk_index: int,
    first_order: int,
    orders: int,
    total_orders: int,
    dealsize_thresholds: tuple[float, float],
    price_cap: float,
) -> pl.DataFrame:
    """The lines of `orders` consecutive orders starting at order position `first_order`."""
    rng = np.random.default_rng([seed, 1, chunk_index])
    days, cumulative = _day_quantiles()
    position = (first_order + np.arange(orders) + rng.random(orders)) / total_orders
    order_day = days[np.searchsorted(cumulative, np.clip(position, 0, 1 - 1e-12))]
    order_customer = rng.choice(len(catalog.customer_weights), size=orders, p=catalog.customer_weights)
    status_names = np.array(list(STATUS_MIX))
    status_p = np.array(list(STATUS_MIX.values()), dtype=float)
    order_status = rng.choice(status_names, size=orders, p=status_p / status_p.sum())
    lines_per_order = np.clip(rng.poisson(LINES_PER_ORDER - 1, size=orders) + 1, 1, 18)

    order_of_line = np.repeat(np.arange(orders), lines_per_order)
    line_number = np.concatenate([np.arange(1, n + 1) for n in lines_per_order])
    n = order_of_line.size
    product = rng.integers(0, catalog.msrp.size, size=n)
    msrp = catalog.msrp[product]
    quantity = np.clip(np.round(rng.normal(35, 9.5, size=n)), 6, 97).astype(np.int64)
    # The true unit price scatters around MSRP; the export caps PRICEEACH at 100 but SALES keeps the truth.
    unit_price = np.round(msrp * rng.uniform(0.62, 1.18, size=n), 2)
    unit_price = np.maximum(unit_price, 26.88)
    price_each = np.minimum(unit_price, price_cap)
    sales = np.round(quantity * unit_price, 2)
    small, large = dealsize_thresholds
    dealsize = np.where(sales < small, "Small", np.where(sales < large, "Medium", "Large"))

    day = order_day[order_of_line]
    month = day.astype("datetime64[M]").astype(int) % 12 + 1
    year = day.astype("datetime64[Y]").astype(int) + 1970
    day_of_month = (day - day.astype("datetime64[M]")).astype(int) + 1
    frame = pl.DataFrame(
        {
            "ORDERNUMBER": FIRST_ORDER_NUMBER + first_order + order_of_line,
            "QUANTITYORDERED": quantity,
            "PRICEEACH": price_each,
            "ORDERLINENUMBER": line_number,
            "SALES": sales,
            "ORDERDATE_MONTH": month,
            "ORDERDATE_DAY": day_of_month,
            "STATUS": order_status[order_of_line],
            "QTR_ID": (month - 1) // 3 + 1,
            "MONTH_ID": month,
            "YEAR_ID": year,
            "PRODUCTLINE": catalog.product_line[product],
            "MSRP": msrp,
            "PRODUCTCODE": catalog.product_code[product],
            "CUSTOMER": order_customer[order_of_line],
            "DEALSIZE": dealsize,
        }
    )
    customers = catalog.customers.with_row_index("CUSTOMER").with_columns(pl.col("CUSTOMER").cast(pl.Int64))
    return (
        frame.join(customers, on="CUSTOMER", how="left", maintain_order="left")
        .with_columns(
            ORDERDATE=pl.format(
                "{}/{}/{} 0:00", pl.col("ORDERDATE_MONTH"), pl.col("ORDERDATE_DAY"), pl.col("YEAR_ID")
            ),
            # Polars writes 95.7 as 95.7 and 2871.0 as 2871.0; the real export writes whole numbers bare.
            PRICEEACH=_plain_number(pl.col("PRICEEACH")),
            SALES=_plain_number(pl.col("SALES")),
        )
        .select(SOURCE_COLUMNS)
    )


def _plain_number(column: pl.Expr) -> pl.Expr:
    text = column.round(2).cast(pl.String)
    return pl.when(text.str.ends_with(".0")).then(text.str.slice(0, text.str.len_chars() - 2)).otherwise(text)


def generate_sales_csv(
    path: Path | str,
    rows: int = 2823,
    seed: int = 42,
    chunk_rows: int = 200_000,
    dealsize_thresholds: tuple[float, float] = (3000.0, 7000.0),
    price_cap: float = 100.0,
) -> dict:
    """Write exactly `rows` order lines to `path`, encoded in code page 850 like the real export.

    Deterministic for a given `rows` and `seed`. Returns the row count, bytes and seconds taken.
    """
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    start = time.perf_counter()
    path = Path(path)
    catalog = build_catalog(seed)
    total_orders = max(1, round(rows / LINES_PER_ORDER))
    orders_per_chunk = max(1, round(chunk_rows / LINES_PER_ORDER))
    written = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write((",".join(SOURCE_COLUMNS) + "\n").encode(ENCODING))
        chunk_index = 0
        while written < rows:
            first_order = chunk_index * orders_per_chunk
            chunk = generate_chunk(
                catalog,
                seed,
                chunk_index,
                first_order,
                orders_per_chunk,
                total_orders,
                dealsize_thresholds,
                price_cap,
            )
            # The last order may lose trailing lines so the file holds exactly `rows` lines.
            chunk = chunk.head(rows - written)
            handle.write(chunk.write_csv(include_header=False).encode(ENCODING))
            written += chunk.height
            chunk_index += 1
    return {
        "path": str(path),
        "rows": written,
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - start, 3),
    }


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(description="Write a sales CSV shaped like the real export.")
    parser.add_argument(
        "--out", type=Path, default=settings.raw_csv_path, help="CSV path (default: %(default)s)"
    )
    parser.add_argument("--rows", type=int, default=settings.ingest.generator_default_rows)
    parser.add_argument("--seed", type=int, default=settings.ingest.generator_seed)
    parser.add_argument("--force", action="store_true", help="overwrite --out when it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        print(
            f"sales-generate: {args.out} exists and is kept (it may be the export SALES_RAW_CSV or the "
            "settings file names); pass --out NEW.csv, or --force to overwrite it",
            file=sys.stderr,
        )
        return 2
    result = generate_sales_csv(
        args.out,
        rows=args.rows,
        seed=args.seed,
        chunk_rows=settings.ingest.generator_chunk_rows,
        dealsize_thresholds=settings.ingest.dealsize_thresholds,
        price_cap=settings.ingest.price_cap,
    )
    print(
        f"wrote {result['rows']:,} rows ({result['bytes']:,} bytes) to {result['path']} in {result['seconds']}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
