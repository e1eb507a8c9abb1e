"""The embedded sample: deterministic, streamed in chunks, with the real export's shape and quirks."""

import re

import polars as pl
import pytest

from sales_assets.ingest.generator import NON_ASCII_NAMES, STATUS_MIX, generate_sales_csv, main
from sales_assets.settings import SOURCE_COLUMNS


@pytest.fixture(scope="module")
def sample(generated_csv) -> pl.DataFrame:
    return pl.read_csv(generated_csv.read_bytes().decode("cp850").encode(), infer_schema=False)


def test_deterministic_for_a_seed(tmp_path, generated_csv):
    again = tmp_path / "again.csv"
    generate_sales_csv(again)
    assert again.read_bytes() == generated_csv.read_bytes()
    other = tmp_path / "other.csv"
    generate_sales_csv(other, seed=7)
    assert other.read_bytes() != generated_csv.read_bytes()


def test_columns_rows_and_code_page(sample, generated_csv):
    assert tuple(sample.columns) == SOURCE_COLUMNS
    assert sample.height == 2823
    raw = generated_csv.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp850")
    for _, name in NON_ASCII_NAMES:
        assert name in text


def test_blanks_territory_and_status_like_the_real_file(sample):
    blanks = sample.null_count().row(0, named=True)
    assert 0.86 < blanks["ADDRESSLINE2"] / 2823 < 0.92  # real: 2,521 of 2,823 (0.893)
    assert 0.45 < blanks["STATE"] / 2823 < 0.60  # real: 1,486 (0.526)
    assert 0.01 < blanks["POSTALCODE"] / 2823 < 0.04  # real: 76 (0.027)
    assert {c for c, n in blanks.items() if n} == {"ADDRESSLINE2", "STATE", "POSTALCODE"}
    territories = set(sample["TERRITORY"])
    assert territories == {"NA", "EMEA", "APAC", "Japan"}
    assert set(sample.filter(pl.col("TERRITORY") == "NA")["COUNTRY"]) == {"USA", "Canada"}
    shares = sample["STATUS"].value_counts(normalize=True)
    assert set(shares["STATUS"]) == set(STATUS_MIX)
    assert shares.filter(pl.col("STATUS") == "Shipped")["proportion"].item() > 0.85


def test_dates_prices_msrp_and_dealsize_follow_the_real_rules(sample):
    assert all(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} 0:00", d) for d in sample["ORDERDATE"])
    typed = sample.with_columns(
        pl.col("ORDERDATE").str.to_datetime("%m/%d/%Y %H:%M"),
        pl.col("QUANTITYORDERED", "MONTH_ID", "QTR_ID", "YEAR_ID").cast(pl.Int64),
        pl.col("PRICEEACH", "SALES", "MSRP").cast(pl.Float64),
    )
    assert str(typed["ORDERDATE"].min().date()) >= "2003-01-01"
    assert str(typed["ORDERDATE"].max().date()) <= "2005-05-31"
    assert (typed["ORDERDATE"].dt.month() == typed["MONTH_ID"]).all()
    assert (typed["ORDERDATE"].dt.year() == typed["YEAR_ID"]).all()
    assert typed["PRICEEACH"].max() == 100
    uncapped = typed.filter(pl.col("PRICEEACH") < 100)
    assert ((uncapped["SALES"] - uncapped["QUANTITYORDERED"] * uncapped["PRICEEACH"]).abs() <= 0.01).all()
    capped = typed.filter(pl.col("PRICEEACH") == 100)
    assert 0.25 < capped.height / typed.height < 0.65  # real: 1,304 of 2,823
    assert ((capped["SALES"] / capped["QUANTITYORDERED"]) > 100).all()
    assert typed.group_by("PRODUCTCODE").agg(pl.col("MSRP").n_unique())["MSRP"].max() == 1
    expected = (
        pl.when(pl.col("SALES") < 3000)
        .then(pl.lit("Small"))
        .when(pl.col("SALES") < 7000)
        .then(pl.lit("Medium"))
    ).otherwise(pl.lit("Large"))
    assert typed.select((pl.col("DEALSIZE") == expected).all()).item()
    monthly = (
        typed.group_by(pl.col("ORDERDATE").dt.month().alias("m")).agg(pl.col("SALES").sum()).sort("SALES")
    )
    assert monthly["m"][-1] == 11  # November peaks, as in the real series


def test_chunked_generation_writes_exact_rows_with_unique_order_lines(tmp_path):
    path = tmp_path / "big.csv"
    result = generate_sales_csv(path, rows=25_000, chunk_rows=4_000)
    assert result["rows"] == 25_000
    frame = pl.read_csv(path.read_bytes().decode("cp850").encode(), infer_schema=False)
    assert frame.height == 25_000
    assert frame.select(pl.struct("ORDERNUMBER", "ORDERLINENUMBER").is_unique().all()).item()


def test_console_script_writes_where_asked(tmp_path, capsys):
    out = tmp_path / "cli.csv"
    assert main(["--out", str(out), "--rows", "100"]) == 0
    assert "wrote 100 rows" in capsys.readouterr().out
    assert out.read_bytes().count(b"\n") == 101
