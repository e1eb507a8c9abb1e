"""Blank counting on the raw CSV (through the one export reader, 'NA' kept) and on a frame, and the
before/after table."""

import duckdb
import polars as pl
import pytest

from sales_assets.analytics.missing_values import (
    blank_counts,
    missing_value_report,
    raw_blank_counts,
    table_blank_counts,
)
from sales_assets.settings import IngestSettings
from sales_tests.analytics.conftest import source_rows


@pytest.mark.parametrize("encoding", ["utf-8", "cp850", "utf-8-sig"])
def test_raw_blank_counts_read_text_in_its_encoding(tmp_path, encoding):
    source = source_rows(90, seed=3).with_columns(
        # A whitespace-only cell and an empty city are blanks too; 'NA' is North America.
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("  ")).otherwise(pl.col("STATE")).alias("STATE"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("")).otherwise(pl.col("CITY")).alias("CITY"),
        pl.lit("NA").alias("TERRITORY"),
    )
    path = tmp_path / "raw.csv"
    path.write_bytes(source.write_csv().encode(encoding))
    rows, counts, dialect = raw_blank_counts(path, IngestSettings())
    assert rows == 90
    assert (
        dialect.encoding.replace("_", "-").lower().startswith(encoding.split("-sig")[0].replace("cp", "cp"))
    )
    expected = {
        name: int((source[name].cast(pl.String).str.strip_chars() == "").sum()) for name in source.columns
    }
    assert dict(counts.rows()) == expected
    assert (expected["STATE"], expected["CITY"], expected["TERRITORY"]) == (31, 1, 0)


def test_raw_blank_counts_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        raw_blank_counts(tmp_path / "nowhere.csv", IngestSettings())


def test_blank_counts_on_typed_columns():
    frame = pl.DataFrame({"SALES": [1.0, None, 3.0], "STATE": ["NY", "", None], "YEAR": [2003, 2004, 2005]})
    rows, counts = blank_counts(frame)
    assert rows == 3
    assert counts.rows() == [("SALES", 1), ("STATE", 2), ("YEAR", 0)]


def test_report_puts_raw_columns_first_and_marks_dropped_ones():
    before = pl.DataFrame({"column": ["ADDRESSLINE2", "STATE", "SALES"], "missing": [3, 2, 0]})
    after = pl.DataFrame({"column": ["STATE", "SALES", "YEAR"], "missing": [0, 0, 0]})
    report = missing_value_report(before, 4, after, 4)
    assert report.rows() == [
        ("ADDRESSLINE2", 3, 75.0, None, None, False),
        ("STATE", 2, 50.0, 0, 0.0, True),
        ("SALES", 0, 0.0, 0, 0.0, True),
        ("YEAR", None, None, 0, 0.0, True),
    ]


def test_report_of_empty_tables_has_no_percentages():
    before = pl.DataFrame({"column": ["SALES"], "missing": [0]})
    report = missing_value_report(before, 0, before, 0)
    assert report.row(0) == ("SALES", 0, None, 0, None, True)


# Every Unicode whitespace kind, alone and around text, plus empty and null cells.
WHITESPACE = [
    " ",
    "\t",
    "\n",
    "\x0b",
    "\f",
    "\r",
    "\x85",
    "\xa0",
    "\u1680",
    "\u2003",
    "\u2028",
    "\u202f",
    "\u3000",
]


def test_polars_and_duckdb_count_the_same_blanks():
    cells = [*WHITESPACE, " \t\xa0 ", "", None, "NA", "x", " x ", "\u200b"]  # zero-width space is not blank
    frame = pl.DataFrame(
        {"STATE": cells, "SALES": [1.0, None, *[2.0] * (len(cells) - 2)], "YEAR": list(range(len(cells)))}
    )
    expected_blank = len(WHITESPACE) + 3
    rows, counts = blank_counts(frame)
    assert (rows, counts.rows()) == (len(cells), [("STATE", expected_blank), ("SALES", 1), ("YEAR", 0)])
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE sales AS SELECT * FROM frame")
        table_rows, table_counts = table_blank_counts(conn, "sales")
    assert table_rows == rows
    assert table_counts.equals(counts)
