"""Issue 9's tables, row by row, on 200-row exports derived from the generated sample, plus one test per kind
(delimiters x decimal marks x encodings x date orders) on generated inputs: every variant reads to the same
clean layer as the plain file, or stops with a message naming the file, the column and the setting."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import polars as pl
import pytest

from sales_assets.ingest.cleaning import RULE_MALFORMED
from sales_serving.contract.export import ExportError, ExportLayout, decide_date_order
from sales_tests.contract.exports import (
    MONEY,
    clean,
    day_first,
    decimal_comma,
    excel_thousands,
    iso_date,
    restyle,
    sample_rows,
    write_export,
)


def expected_total(rows) -> float:
    return round(sum(float(r["SALES"]) for r in rows), 2)


# ---- the first table: runs that finished green with wrong data ----------------------------------------


def test_sales_with_excel_thousands_separators_keep_every_row_and_the_total(rows, reference, tmp_path):
    path = write_export(tmp_path / "thousands.csv", restyle(rows, "SALES", excel_thousands))
    assert '"2,' in path.read_text() or '"1,' in path.read_text()  # the quoted "2,871.00" style
    stats, frame, _ = clean(path, tmp_path / "out")
    assert (stats.rows_clean, stats.rows_rejected) == (200, 0)
    assert stats.dialect.thousands_separator == "," and stats.dialect.decimal_mark == "."
    assert round(frame["SALES"].sum(), 2) == expected_total(rows)
    assert frame.equals(reference)


def test_day_first_order_dates_are_read_day_first_every_one(rows, reference, tmp_path):
    path = write_export(tmp_path / "dayfirst.csv", restyle(rows, "ORDERDATE", day_first))
    stats, frame, _ = clean(path, tmp_path / "out")
    assert stats.dialect.date_order == "day_first"
    assert stats.rows_rejected == 0
    assert frame["ORDERDATE"].to_list() == reference["ORDERDATE"].to_list()


@pytest.mark.parametrize("token", ["NaN", "nan", "inf", "-inf", "Infinity", "1e999", "-1.5e400"])
@pytest.mark.parametrize("column", MONEY)
def test_not_a_number_values_are_rejected_with_a_reason(rows, tmp_path, column, token):
    styled = restyle(rows, column, lambda _: token, every=25)  # rows 0, 25, ... (lines 2, 27, ...)
    stats, frame, rejects = clean(write_export(tmp_path / "nan.csv", styled), tmp_path / "out")
    assert stats.rows_rejected == 8
    assert rejects["source_line"].to_list() == list(range(2, 202, 25))
    assert all(f"{column} '{token}' is" in reason for reason in rejects["reason"])
    assert frame.select(pl.col(MONEY).is_finite().all()).row(0) == (True, True, True)
    by_country = frame.group_by("COUNTRY").agg(pl.col("SALES").sum())
    assert by_country["SALES"].is_finite().all()


@pytest.mark.parametrize("pad", [" ", "\u00a0", "\t", "  \u00a0"])
def test_text_is_trimmed_so_each_group_is_one(rows, reference, tmp_path, pad):
    styled = restyle(restyle(rows, "PRODUCTLINE", lambda v: v + pad, 3), "COUNTRY", lambda v: pad + v, 4)
    styled = restyle(styled, "STATUS", lambda v: f"{pad}{v}{pad}", 5)
    stats, frame, _ = clean(write_export(tmp_path / "pad.csv", styled), tmp_path / "out")
    assert stats.rows_rejected == 0
    for column in ("PRODUCTLINE", "COUNTRY", "STATUS"):
        assert sorted(frame[column].unique()) == sorted(reference[column].unique())


@pytest.mark.parametrize("token", ["NULL", "null", "None", "#N/A", "N/A", "n/a", "-", " NULL "])
def test_null_tokens_are_missing_values_but_territory_na_is_north_america(rows, tmp_path, token):
    styled = restyle(restyle(rows, "STATE", lambda _: token, 5), "POSTALCODE", lambda _: token, 7)
    styled = restyle(styled, "COUNTRY", lambda _: token, 50)  # lines 2, 52, 102, 152
    stats, frame, rejects = clean(write_export(tmp_path / "nulls.csv", styled), tmp_path / "out")
    assert set(rejects["reason"]) == {"COUNTRY is blank"}
    assert rejects["source_line"].to_list() == [2, 52, 102, 152]
    assert token.strip() not in set(frame["STATE"]) | set(frame["POSTALCODE"]) | set(frame["COUNTRY"])
    kept = [r for i, r in enumerate(styled) if i % 50]
    assert frame.filter(pl.col("STATE") == "Unknown").height == sum(
        1 for i, r in enumerate(rows) if i % 50 and (i % 5 == 0 or not r["STATE"])
    )
    assert frame.filter(pl.col("TERRITORY") == "NA").height == sum(r["TERRITORY"] == "NA" for r in kept)


def test_seventeen_digit_order_numbers_are_kept_exactly(rows, tmp_path):
    styled = restyle(rows, "ORDERNUMBER", lambda v: f"200302241{int(v):08d}")
    stats, frame, _ = clean(write_export(tmp_path / "long.csv", styled), tmp_path / "out")
    assert stats.rows_rejected == 0
    assert frame.schema["ORDERNUMBER"] == pl.Int64
    assert sorted(frame["ORDERNUMBER"].unique().to_list()) == sorted({int(r["ORDERNUMBER"]) for r in styled})
    assert 20030224100010100 in frame["ORDERNUMBER"].to_list()  # 2**54 < n: a float would change it


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("ORDERNUMBER", "99999999999999999999", "ORDERNUMBER '99999999999999999999' is out of range"),
        ("QUANTITYORDERED", "30.5", "QUANTITYORDERED '30.5' is not a whole number"),
        ("QTR_ID", "5", "QTR_ID 5 is outside 1..4"),
        ("MONTH_ID", "13", "MONTH_ID 13 is outside 1..12"),
    ],
)
def test_integers_out_of_range_reject_their_row_not_the_file(rows, tmp_path, column, value, reason):
    styled = restyle(rows, column, lambda _: value, every=100)
    stats, _, rejects = clean(write_export(tmp_path / "ints.csv", styled), tmp_path / "out")
    assert stats.rows_rejected == 2
    assert all(r.startswith(reason) for r in rejects["reason"])


@pytest.mark.parametrize(
    "address", ["“Harbour” Rd – Unit 4", "‘Old’ Mill — Gate 2", "Price 12 € Str.", "Children’s Way…"]
)
def test_windows_1252_punctuation_reads_as_those_characters(rows, tmp_path, address):
    styled = restyle(rows, "ADDRESSLINE1", lambda _: address, every=10)
    path = write_export(tmp_path / "win.csv", styled, encoding="cp1252")
    stats, frame, _ = clean(path, tmp_path / "out")
    assert stats.dialect.encoding == "cp1252"
    assert frame.filter(pl.col("ADDRESSLINE1") == address).height == 20
    text = " ".join(frame.select(pl.col(pl.String)).unpivot()["value"].drop_nulls().to_list())
    letters = {v for r in rows for v in r.values() if not v.isascii()}  # the sample's DOS-era names
    assert letters and all(name in text for name in letters)


# ---- the second table: failures a user could not act on ------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_semicolon_export_with_decimal_commas_reads_right(rows, reference, tmp_path, delimiter):
    styled = rows
    for column in MONEY:
        styled = restyle(styled, column, decimal_comma)
    stats, frame, _ = clean(write_export(tmp_path / "semi.csv", styled, delimiter=delimiter), tmp_path / "o")
    assert (stats.dialect.delimiter, stats.dialect.decimal_mark) == (delimiter, ",")
    assert frame.equals(reference)


def test_one_line_with_an_unquoted_comma_goes_to_the_rejects_and_the_rest_loads(rows, tmp_path):
    path = write_export(tmp_path / "comma.csv", rows)
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[50].split(",")
    fields[15] += ", Suite 9"  # ADDRESSLINE1 gains an unquoted comma: 26 fields on line 51
    lines[50] = ",".join(fields)
    path.write_text("".join(lines))
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert (stats.rows_in, stats.rows_clean, stats.rows_rejected, stats.rows_malformed) == (200, 199, 1, 1)
    row = rejects.row(0, named=True)
    assert row["source_line"] == 51
    assert row["raw_line"] == lines[50].rstrip("\n")
    assert row["rule"] == RULE_MALFORMED
    assert row["reason"].startswith("has 26 field(s) where the header has 25")


@pytest.mark.parametrize("shape", ["too_few", "broken_quote", "stray_quote_mid_field", "blank_line"])
def test_malformed_lines_of_every_kind_are_set_aside_with_their_line(rows, tmp_path, shape):
    path = write_export(tmp_path / "bad.csv", rows)
    lines = path.read_text().splitlines(keepends=True)
    if shape == "too_few":
        lines[30] = ",".join(lines[30].split(",")[:20]) + "\n"
    elif shape == "broken_quote":
        lines[30] = lines[30].replace(",Shipped,", ',"Shipped,', 1)
    elif shape == "stray_quote_mid_field":
        lines[30] = lines[30].replace(",Shipped,", ',Ship"ped,', 1)
    else:
        lines.insert(30, "\n")
    path.write_text("".join(lines))
    stats, frame, rejects = clean(path, tmp_path / "out")
    if shape == "blank_line":  # a blank line is no record
        assert (stats.rows_in, stats.rows_clean, stats.rows_rejected) == (200, 200, 0)
        return
    assert (stats.rows_in, stats.rows_clean, stats.rows_malformed) == (200, 199, 1)
    assert rejects["source_line"].to_list() == [31]
    assert rejects["raw_line"].to_list() == [lines[30].rstrip("\n")]


def test_a_quoted_field_spanning_two_lines_is_one_record(rows, tmp_path):
    styled = restyle(rows, "ADDRESSLINE2", lambda _: "Floor 2\nRear entrance", every=40)
    stats, frame, rejects = clean(write_export(tmp_path / "multi.csv", styled), tmp_path / "out")
    assert (stats.rows_in, stats.rows_clean, stats.rows_rejected) == (200, 200, 0)


def test_excel_unicode_text_utf16_tab_separated_reads_right(rows, reference, tmp_path):
    path = write_export(tmp_path / "unicode.txt", rows, delimiter="\t", encoding="utf-16", line_end="\r\n")
    assert path.read_bytes()[:2] == b"\xff\xfe"
    stats, frame, _ = clean(path, tmp_path / "out")
    assert (stats.dialect.encoding, stats.dialect.delimiter) == ("utf-16", "\t")
    assert frame.equals(reference)


def test_header_names_match_ignoring_case_and_spaces_and_unnamed_empty_columns_drop(
    rows, reference, tmp_path
):
    path = write_export(tmp_path / "header.csv", rows)
    lines = path.read_text().splitlines()
    header = ",".join(f" {name.lower()} " for name in lines[0].split(","))
    path.write_text("\n".join([header + ",", *(line + "," for line in lines[1:])]) + "\n")
    stats, frame, _ = clean(path, tmp_path / "out")
    assert stats.rows_rejected == 0
    assert frame.equals(reference)


def test_an_unnamed_column_holding_values_stops_with_its_line(rows, tmp_path):
    path = write_export(tmp_path / "unnamed.csv", rows)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",", *(line + ",x" for line in lines[1:])]) + "\n")
    with pytest.raises(ExportError, match=r"unnamed\.csv: line 2: field 26 has no name .*seen 'x'"):
        clean(path, tmp_path / "out")


# ---- ambiguity stops with the column, what was seen and the setting ------------------------------------


def test_numbers_that_could_be_either_separator_stop_and_name_the_setting(rows, tmp_path):
    styled = rows
    for column in MONEY:
        styled = restyle(styled, column, lambda v: f"{int(float(v)) % 9 + 1},{int(float(v)) % 1000:03d}")
    path = write_export(tmp_path / "amb.csv", styled, delimiter=";")
    with pytest.raises(ExportError) as error:
        clean(path, tmp_path / "out")
    message = str(error.value)
    assert re.search(r"amb\.csv: line 2, column (PRICEEACH|SALES|MSRP): cannot tell", message)
    assert "SALES_INGEST__READING__DIALECT__DECIMAL_MARK" in message
    assert "\n" not in message


def test_the_decimal_setting_settles_what_the_file_cannot(rows, tmp_path):
    styled = restyle(rows, "SALES", lambda v: f"{int(float(v)) // 1000},{int(float(v)) % 1000:03d}")
    styled = restyle(styled, "PRICEEACH", lambda v: v if "." in v else v + ".0")
    path = write_export(tmp_path / "set.csv", styled)
    dialect = {"decimal_mark": ".", "thousands_separator": ","}
    stats, frame, _ = clean(path, tmp_path / "out", dialect=dialect)
    assert frame["SALES"].to_list()[:3] == [float(int(float(r["SALES"]))) for r in rows[:3]]


def test_dates_read_both_ways_in_one_file_stop_with_examples():
    pairs = pl.DataFrame(
        {"text": ["24/2/2003 0:00", "2/24/2003 0:00"], "month": ["2", "2"], "line": [2, 3]},
        schema={"text": pl.String, "month": pl.String, "line": pl.UInt32},
    )
    layout = ExportLayout(columns=("ORDERDATE", "MONTH_ID"), date_column="ORDERDATE", month_column="MONTH_ID")
    with pytest.raises(ExportError, match=r"x\.csv: column ORDERDATE: dates read day-first .*DATE_ORDER"):
        decide_date_order(Path("x.csv"), pairs, layout, None)


def test_dates_with_nothing_to_tell_the_order_stop_with_the_setting():
    pairs = pl.DataFrame(
        {"text": ["3/4/2003 0:00", "5/6/2003"], "month": [None, None], "line": [2, 9]},
        schema={"text": pl.String, "month": pl.String, "line": pl.UInt32},
    )
    layout = ExportLayout(columns=("ORDERDATE",), date_column="ORDERDATE")
    with pytest.raises(
        ExportError,
        match=r"x\.csv: line 2, column ORDERDATE: cannot tell .* \(seen '3/4/2003 0:00'\); set SALES_INGEST__READING__DIALECT__DATE_ORDER",
    ):
        decide_date_order(Path("x.csv"), pairs, layout, None)


def test_month_id_agreement_decides_when_no_number_exceeds_twelve(rows, reference, tmp_path):
    early = [r for r in rows if int(r["ORDERDATE"].split("/")[1]) <= 12][:60]
    styled = restyle(early, "ORDERDATE", day_first)
    stats, frame, _ = clean(write_export(tmp_path / "agree.csv", styled), tmp_path / "out")
    assert stats.dialect.date_order == "day_first"
    assert "only day-first reads right" in stats.dialect.evidence["date_order"]
    assert stats.rows_rejected == 0


@pytest.mark.parametrize(
    ("style", "expected_year"),
    [
        (lambda v: v.replace("/2003 ", "/03 ").replace("/2004 ", "/04 ").replace("/2005 ", "/05 "), None),
        (lambda v: str((dt.datetime.strptime(v, "%m/%d/%Y %H:%M") - dt.datetime(1899, 12, 30)).days), None),
    ],
    ids=["two-digit-years", "excel-day-numbers"],
)
def test_two_digit_years_and_excel_day_numbers(rows, reference, tmp_path, style, expected_year):
    stats, frame, _ = clean(
        write_export(tmp_path / "d.csv", restyle(rows, "ORDERDATE", style)), tmp_path / "o"
    )
    assert stats.rows_rejected == 0
    assert frame["ORDERDATE"].to_list() == reference["ORDERDATE"].to_list()


# ---- one test per kind: delimiters x decimal marks x encodings x date orders ---------------------------

DELIMITERS = [",", ";", "\t", "|"]
DECIMALS = [".", ","]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252", "cp850"]
THOUSANDS = {".": (",", "."), ",": (".", ",")}  # decimal mark -> (thousands separator, decimal mark)
DATE_STYLES = {"month_first": lambda v: v, "day_first": day_first, "iso": iso_date}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[list[dict[str, str]], pl.DataFrame]:
    rows = sample_rows(60)
    work = tmp_path_factory.mktemp("small")
    _, frame, _ = clean(write_export(work / "plain.csv", rows), work / "out")
    return rows, frame


@pytest.mark.parametrize(
    ("delimiter", "decimal", "encoding", "date_style"),
    list(itertools.product(DELIMITERS, DECIMALS, ENCODINGS, DATE_STYLES)),
)
def test_every_dialect_reads_to_the_same_clean_layer(
    small, tmp_path, delimiter, decimal, encoding, date_style
):
    rows, reference = small
    styled = restyle(rows, "ORDERDATE", DATE_STYLES[date_style])
    for column in MONEY:
        if decimal == ",":
            styled = restyle(styled, column, decimal_comma)
        # every other value in Excel's `#,##0.00` style of the locale: `2,871.00` or `2.871,00`
        styled = restyle(
            styled, column, lambda v: excel_thousands(v.replace(",", "."), *THOUSANDS[decimal]), 2
        )
    # Windows line ends on half the kinds (`;` and `|` files), Unix on the rest.
    line_end = "\r\n" if delimiter in ";|" else "\n"
    path = write_export(tmp_path / "x.csv", styled, delimiter=delimiter, encoding=encoding, line_end=line_end)
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert stats.dialect.delimiter == delimiter
    assert stats.dialect.decimal_mark == decimal
    assert frame.equals(reference)


def test_a_file_of_mostly_malformed_lines_stops_naming_the_delimiter(rows, tmp_path, monkeypatch):
    from sales_serving.contract.export import lines as line_check

    monkeypatch.setattr(line_check, "MAX_MALFORMED_LINES", 10)
    path = write_export(tmp_path / "mixed.csv", rows, delimiter=";")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace(";", ","), *lines[1:]]) + "\n")  # header with commas
    with pytest.raises(
        ExportError,
        match=r"mixed\.csv: line 2: more than 10 lines .*; no setting reads it: the header is "
        r"written with ',' and the lines split into its fields under ';', so write the header with ';' too",
    ):
        clean(path, tmp_path / "out")
    path.write_text("\n".join(lines) + "\n")  # the advice applied: the header written with ';' too
    stats, frame, rejects = clean(path, tmp_path / "second")
    assert frame.height == len(rows) and rejects.height == 0


@pytest.mark.parametrize(
    "style",
    [
        lambda d: d.strftime("%d-%b-%Y"),
        lambda d: d.strftime("%d-%b-%y %H:%M"),
        lambda d: d.strftime("%b %d, %Y"),
        lambda d: d.strftime("%d.%m.%Y %H:%M:%S"),
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S"),
        lambda d: d.strftime("%m/%d/%Y %I:%M %p"),
    ],
    ids=["dd-mon-yyyy", "dd-mon-yy", "mon-dd-yyyy", "german-dots", "iso-t", "am-pm"],
)
def test_other_date_spellings_read_to_the_same_dates(rows, reference, tmp_path, style):
    restyled = restyle(rows, "ORDERDATE", lambda v: style(dt.datetime.strptime(v, "%m/%d/%Y %H:%M")))
    stats, frame, rejects = clean(write_export(tmp_path / "dates.csv", restyled), tmp_path / "out")
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert frame["ORDERDATE"].to_list() == reference["ORDERDATE"].to_list()


@pytest.mark.parametrize(
    ("dialect", "delimiter", "encoding", "style"),
    [
        ({"encoding": "cp1252"}, ",", "cp1252", {}),
        ({"delimiter": ";"}, ";", "utf-8", {}),
        (
            {"decimal_mark": ",", "thousands_separator": "."},
            ";",
            "utf-8",
            {c: lambda v: excel_thousands(v, ".", ",") for c in MONEY},
        ),
        ({"currency_signs": ["€"]}, ",", "utf-8", {"SALES": lambda v: f"{v} €"}),
        ({"date_order": "day_first"}, ",", "utf-8", {"ORDERDATE": day_first}),
        (
            {
                "encoding": "utf-16",
                "delimiter": "\t",
                "decimal_mark": ".",
                "thousands_separator": "",
                "date_order": "month_first",
            },
            "\t",
            "utf-16",
            {},
        ),
    ],
    ids=["encoding", "delimiter", "decimal-and-thousands", "currency", "date-order", "everything"],
)
def test_every_part_of_the_dialect_can_be_set(rows, reference, tmp_path, dialect, delimiter, encoding, style):
    styled = rows
    for column, restyler in style.items():
        styled = restyle(styled, column, restyler)
    path = write_export(tmp_path / "set.csv", styled, delimiter=delimiter, encoding=encoding)
    stats, frame, _ = clean(path, tmp_path / "out", dialect=dialect)
    assert frame.equals(reference)
    if "date_order" in dialect:
        assert stats.dialect.evidence["date_order"] == "from settings"
    if "encoding" in dialect:
        assert stats.dialect.evidence["encoding"] == "from settings"
