"""The one CSV writer: every cell and column name a spreadsheet would run as a formula is prefixed
(OWASP), in rows written one by one and in frames (summaries, EDA tables), and numbers never are."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest

from sales_assets.io import write_table_pair
from sales_serving.contract.csv_out import NumberText, SafeCsvWriter, safe_cell, write_frame_csv

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-4"]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_starting_like_a_formula_is_prefixed(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["USA", "", None, -4, -2.5, NumberText("-4"), NumberText("-1.234,50"), "a=b"]
)
def test_numbers_and_plain_text_are_written_as_they_are(value):
    assert safe_cell(value) == value


def test_the_row_writer_escapes_the_header_too():
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(["=EXTRA_HEADER", "COUNTRY"])
    writer.writerow(["x", "=HYPERLINK(1)"])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["'=EXTRA_HEADER", "COUNTRY"],
        ["x", "'=HYPERLINK(1)"],
    ]


def test_frames_are_written_with_text_cells_and_names_escaped_and_numbers_kept(tmp_path):
    frame = pl.DataFrame(
        {
            "COUNTRY": FORMULAS,
            "=total": [-1.5] * len(FORMULAS),
            "kind": pl.Series(["-a", "b", "c", "d", "e", "f", "g"], dtype=pl.Categorical),
        }
    )
    written = pl.read_csv(write_frame_csv(frame, tmp_path / "t.csv"), infer_schema=False)
    assert written.columns == ["COUNTRY", "'=total", "kind"]
    assert written["COUNTRY"].to_list() == ["'" + text for text in FORMULAS]
    assert written["'=total"].to_list() == ["-1.5"] * len(FORMULAS)
    assert written["kind"][0] == "'-a"


def test_summaries_go_through_the_one_writer(tmp_path):
    frame = pl.DataFrame({"COUNTRY": ['=HYPERLINK("http://x")', "USA"], "total_sales": [1.0, 2.0]})
    paths = write_table_pair(frame, tmp_path, "top_countries")
    assert pl.read_csv(paths["csv"])["COUNTRY"].to_list() == ['\'=HYPERLINK("http://x")', "USA"]
    assert pl.read_parquet(paths["parquet"])["COUNTRY"].to_list() == frame["COUNTRY"].to_list()


@pytest.mark.parametrize("formula", ["=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", "-1+2", "\t=2"])
def test_formula_cells_in_every_text_column_of_the_clean_layer_are_prefixed(reference, tmp_path, formula):
    # The clean layer of a generated export, a formula put in each of its text columns in turn.
    text_columns = [name for name, dtype in reference.schema.items() if dtype in (pl.String, pl.Categorical)]
    assert len(text_columns) >= 8
    for column in text_columns:
        frame = reference.head(3).with_columns(pl.lit(formula).cast(reference.schema[column]).alias(column))
        written = pl.read_csv(write_frame_csv(frame, tmp_path / f"{column}.csv"), infer_schema=False)
        assert written[column].to_list() == ["'" + formula] * 3, column
