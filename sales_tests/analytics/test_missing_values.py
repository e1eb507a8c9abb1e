"""Blank counting on the raw CSV (as text, 'NA' kept) and on a frame, and the before/after table."""

import polars as pl
import pytest

from sales_assets.analytics.missing_values import blank_counts, missing_value_report, raw_blank_counts

RAW = 'ORDERNUMBER,CITY,STATE,TERRITORY\n1,Nantes,,EMEA\n2,Málaga," ",EMEA\n3,NYC,NY,NA\n4,,"",NA\n'


@pytest.mark.parametrize("encoding", ["utf-8", "cp850", "utf-8-sig"])
def test_raw_blank_counts_read_text_in_its_encoding(tmp_path, encoding):
    path = tmp_path / "raw.csv"
    path.write_bytes(RAW.encode(encoding))
    rows, counts = raw_blank_counts(path, encoding)
    assert rows == 4
    # Empty, quoted-empty and whitespace-only cells are missing; 'NA' is North America.
    assert counts.rows() == [("ORDERNUMBER", 0), ("CITY", 1), ("STATE", 3), ("TERRITORY", 0)]


def test_raw_blank_counts_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        raw_blank_counts(tmp_path / "nowhere.csv", "utf-8")


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
