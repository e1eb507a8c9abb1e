"""New variants of the kinds issue 21 names, generated from the sample: CR-only and CRLF files with
newlines inside quoted fields, a NUL byte at each place a line can hold one, a trailing delimiter after
quoted fields, `\\N` and zero-width characters in other columns, ISO 8601 offsets and Excel day numbers in
other spellings, and thousands separators of other locales. Each reads to the plain file's clean layer or
rejects exactly the damaged line, naming it."""

from __future__ import annotations

import datetime as dt

import pytest

from sales_assets.ingest.cleaning import RULE_MALFORMED
from sales_tests.contract.exports import MONEY, clean, excel_thousands, order_date, restyle, write_export


@pytest.fixture(scope="module")
def multiline(rows) -> list[dict[str, str]]:
    """Rows whose CUSTOMERNAME holds a newline on every fifth row (a quoted field over two lines)."""
    return [r | {"CUSTOMERNAME": "Acme\nWest Models"} if i % 5 == 0 else dict(r) for i, r in enumerate(rows)]


@pytest.mark.parametrize(
    ("line_end", "inside"), [("\r", "\r"), ("\r", "\n"), ("\r\n", "\r\n"), ("\n", "\r\n")]
)
def test_quoted_newlines_in_cr_and_crlf_files_stay_in_their_record(multiline, tmp_path, line_end, inside):
    plain = write_export(tmp_path / "plain.csv", multiline).read_text()
    path = tmp_path / "ends.csv"
    marked = plain.replace("Acme\nWest", "Acme\x01West")
    path.write_bytes(marked.replace("\n", line_end).replace("\x01", inside).encode())
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0 and frame.height == 200
    assert (frame["CUSTOMERNAME"] == "Acme\nWest Models").sum() == 40  # every line end inside reads as LF


@pytest.mark.parametrize("place", ["line start", "line end", "quoted field", "last line, no line end"])
def test_a_nul_byte_anywhere_in_a_line_rejects_that_line_only(rows, reference, tmp_path, place):
    lines = write_export(tmp_path / "plain.csv", rows).read_text().split("\n")[:-1]
    at = len(lines) - 1 if place.startswith("last") else 10
    if place == "line start":
        lines[at] = "\x00" + lines[at]
    elif place == "line end":
        lines[at] += "\x00"
    elif place == "quoted field":
        lines[at] = lines[at].replace(",", ',"a\x00b",', 1)
    else:
        lines[at] += "\x00"
    path = tmp_path / "nul.csv"
    path.write_bytes(("\n".join(lines) + ("" if place.startswith("last") else "\n")).encode())
    stats, frame, rejects = clean(path, tmp_path / "out")
    (reject,) = rejects.rows(named=True)
    assert reject["source_line"] == at + 1 and reject["rule"] == RULE_MALFORMED
    assert frame.height == 199


@pytest.mark.parametrize("trailing", [",", ",,"])
def test_trailing_delimiters_after_quoted_fields_are_empty_columns_dropped(rows, tmp_path, trailing):
    quoted = [
        r | {"CUSTOMERNAME": r["CUSTOMERNAME"] + ", Ltd", "ADDRESSLINE1": '12 "Harbour" Rd'} for r in rows
    ]
    _, expected, _ = clean(write_export(tmp_path / "plain.csv", quoted), tmp_path / "plain")
    lines = write_export(tmp_path / "q.csv", quoted).read_text().split("\n")[:-1]
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join(line + trailing for line in lines) + "\n")
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0 and frame.equals(expected)


@pytest.mark.parametrize("column", ["MSRP", "QUANTITYORDERED", "PRICEEACH"])
def test_mysql_null_in_a_number_column_rejects_its_row_naming_the_value(rows, tmp_path, column):
    path = write_export(tmp_path / "null.csv", restyle(rows, column, lambda v: "\\N", every=50))
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert frame.height == 196 and rejects["source_line"].to_list() == [2, 52, 102, 152]
    assert all(r.startswith(f"{column} '\\N' is not a") for r in rejects["reason"])


@pytest.mark.parametrize(
    "column", ["STATUS", "PRODUCTLINE", "DEALSIZE", "PRODUCTCODE", "QUANTITYORDERED", "SALES"]
)
@pytest.mark.parametrize("mark", ["\u200b", "\ufeff", "\u2060"])
def test_zero_width_characters_in_other_columns_are_removed(rows, reference, tmp_path, column, mark):
    path = write_export(tmp_path / "zw.csv", restyle(rows, column, lambda v: v + mark, every=3))
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0 and frame.equals(reference)


@pytest.mark.parametrize(
    "style",
    [
        "%Y-%m-%dT%H:%M:%S+01:00",
        "%Y-%m-%dT%H:%M:%S.000Z",
        "%Y-%m-%d %H:%M:%S-05:00",
        "%Y-%m-%dT%H:%M:%S+0100",
        "%Y-%m-%dT%H:%MZ",
        "%Y/%m/%d %H:%M",
    ],
)
def test_iso_dates_with_offsets_in_other_spellings_keep_the_wall_clock_date(rows, reference, tmp_path, style):
    path = write_export(
        tmp_path / "iso.csv", restyle(rows, "ORDERDATE", lambda v: order_date(v).strftime(style))
    )
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0 and frame.equals(reference)


@pytest.mark.parametrize("suffix", ["", ".0", ".000"])
def test_excel_day_numbers_with_a_zero_fraction(rows, reference, tmp_path, suffix):
    days = lambda v: f"{(order_date(v) - dt.datetime(1899, 12, 30)).days}{suffix}"  # noqa: E731
    stats, frame, rejects = clean(
        write_export(tmp_path / "serial.csv", restyle(rows, "ORDERDATE", days)), tmp_path / "o"
    )
    assert rejects.height == 0 and frame.equals(reference)


@pytest.mark.parametrize(
    ("thousands", "decimal", "delimiter"),
    [
        ("\u00a0", ",", ";"),
        ("\u202f", ",", ";"),
        (" ", ",", ";"),
        ("’", ".", ","),
        ("'", ",", ";"),
        (".", ",", ";"),
    ],
)
def test_thousands_separators_of_other_locales(rows, reference, tmp_path, thousands, decimal, delimiter):
    styled = rows
    for column in MONEY:
        styled = restyle(styled, column, lambda v: excel_thousands(v, thousands, decimal))
    stats, frame, rejects = clean(
        write_export(tmp_path / "th.csv", styled, delimiter=delimiter), tmp_path / "o"
    )
    assert rejects.height == 0 and frame.equals(reference)
    assert stats.dialect.thousands_separator == thousands and stats.dialect.decimal_mark == decimal
