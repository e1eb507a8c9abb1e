"""Advice that settles: each stop message names the setting that fixes it, and applying exactly that
setting makes the same file load (for `sales-predict`, the flag it names)."""

from __future__ import annotations

import re

import pytest

from sales_assets.ingest.cleaning import blocking_problems
from sales_assets.settings import IngestSettings
from sales_serving.contract.export import ExportError
from sales_tests.contract.exports import clean, restyle, write_export


def stop_then_load(path, tmp_path, setting: str, value, expected: str):
    """The file stops naming `setting`; with the dialect part set to `value` it loads every row."""
    with pytest.raises(ExportError) as stopped:
        clean(path, tmp_path / "first")
    message = str(stopped.value)
    assert re.search(expected, message), message
    assert f"SALES_INGEST__READING__DIALECT__{setting.upper()}" in message
    stats, frame, rejects = clean(path, tmp_path / "second", dialect={setting: value})
    assert rejects.height == 0 and frame.height == stats.rows_in - stats.duplicates_removed
    return stats


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("cp1252", "São Paulo Trading"), ("cp1257", "Rīga Trade"), ("cp1254", "Şişli Ticaret")],
)
def test_two_code_pages_reading_alike_stop_and_the_encoding_setting_named_settles(
    rows, tmp_path, encoding, name
):
    # One word read as well in two code pages (`São`/`Săo`, `Rīga`/`Rîga`, `Şişli`/`Þiþli`): the stop names
    # each reading with the value that picks it, and that value loads the names right.
    named = [
        {k: name if k == "CUSTOMERNAME" else v.encode("ascii", "replace").decode() for k, v in r.items()}
        for r in rows
    ]
    path = write_export(tmp_path / "tie.csv", named, encoding=encoding)
    with pytest.raises(ExportError) as stopped:
        clean(path, tmp_path / "first")
    message = str(stopped.value)
    advice = re.search(r"ENCODING to the one whose text line \d+ should read: (.*)$", message)
    assert advice, message
    picks = dict(re.findall(r"=([\w-]+) for '([^']*)'", advice.group(1)))
    (pick,) = [value for value, text in picks.items() if name.split()[0] in text]
    stats, frame, rejects = clean(path, tmp_path / "second", dialect={"encoding": pick})
    assert set(frame["CUSTOMERNAME"]) == {name} and frame.height == 200 and rejects.height == 0


def test_a_lone_thousands_like_separator_stops_and_the_decimal_mark_setting_settles(rows, tmp_path):
    styled = restyle(rows, "SALES", lambda v: f"{float(v):.3f}")  # 2871.000: one separator, 3 digits
    styled = restyle(styled, "PRICEEACH", lambda v: f"{float(v):.0f}")
    styled = restyle(styled, "MSRP", lambda v: f"{float(v):.0f}")
    stop_then_load(
        write_export(tmp_path / "amb.csv", styled),
        tmp_path,
        "decimal_mark",
        ".",
        "cannot tell whether the separator",
    )


def test_two_thousands_separators_stop_and_the_setting_settles(rows, tmp_path):
    styled = restyle(rows, "SALES", lambda v: f"{float(v):,.2f}".replace(",", "'"))
    big = next(i for i, r in enumerate(styled) if "'" in r["SALES"])
    styled[big]["SALES"] = styled[big]["SALES"].replace("'", "\u00a0")  # 2\u00a0871.00 beside 3'120.50
    path = write_export(tmp_path / "two.csv", styled)
    with pytest.raises(ExportError, match="more than one thousands separator.*THOUSANDS_SEPARATOR"):
        clean(path, tmp_path / "first")
    stats, frame, rejects = clean(path, tmp_path / "second", dialect={"thousands_separator": "'"})
    assert stats.dialect.thousands_separator == "'"
    # The one cell in the other spelling is then not a number in the file's format: rejected, named.
    assert frame.height == 199 and rejects["rule"].to_list() == ["SALES not a number"]


def test_a_mistyped_year_stops_and_the_date_window_setting_it_names_settles(rows, tmp_path):
    typo = [dict(r) for r in rows]
    year = typo[7]["YEAR_ID"]
    typo[7]["ORDERDATE"] = typo[7]["ORDERDATE"].replace(f"/{year} ", "/2099 ")
    typo[7]["YEAR_ID"] = "2099"
    path = write_export(tmp_path / "typo.csv", typo)
    stats, _, _ = clean(path, tmp_path / "first")
    (stop,) = blocking_problems(stats, IngestSettings())
    assert "ORDERDATE outside the configured range on 1 row(s) (line 9)" in stop
    assert "SALES_INGEST__MAX_ORDER_DATE" in stop and "DATE_ORDER" not in stop
    wider = {"max_order_date": "2099-12-31"}
    stats, frame, _ = clean(path, tmp_path / "second", ingest=wider)
    assert blocking_problems(stats, IngestSettings(**wider)) == [] and frame.height == 200


# Every other stop of the reader, each triggered on a generated file and settled by exactly the setting
# (or, where no setting can, the edit) its message names.


def ascii_rows(rows):
    return [{k: v.encode("ascii", "replace").decode() for k, v in r.items()} for r in rows]


def test_no_candidate_decoding_the_bytes_stops_and_the_encoding_named_settles(rows, tmp_path):
    # 0x81 is `ü` in DOS 850 and no character of Windows-1252, the only candidate allowed here.
    named = [r | {"CUSTOMERNAME": "Zürich Modelle"} for r in ascii_rows(rows)]
    path = write_export(tmp_path / "dos.csv", named, encoding="cp850")
    with pytest.raises(ExportError, match=r"no candidate encoding \(cp1252\) decodes.*ENCODING") as stopped:
        clean(path, tmp_path / "first", candidate_encodings=["cp1252"])
    value = re.search(r"ENCODING=([\w-]+)", str(stopped.value)).group(1)
    stats, frame, _ = clean(
        path, tmp_path / "second", candidate_encodings=["cp1252"], dialect={"encoding": value}
    )
    assert set(frame["CUSTOMERNAME"]) == {"Zürich Modelle"} and frame.height == 200


def test_a_wrong_encoding_setting_stops_on_the_byte_and_the_encoding_named_settles(rows, tmp_path):
    named = [r | {"CUSTOMERNAME": "Zürich Modelle"} for r in ascii_rows(rows)]
    path = write_export(tmp_path / "dos.csv", named, encoding="cp850")
    with pytest.raises(ExportError, match=r"line 2: byte b'\\x81' is not cp1252 text.*ENCODING") as stopped:
        clean(path, tmp_path / "first", dialect={"encoding": "cp1252"})
    value = re.search(r"ENCODING=([\w-]+)", str(stopped.value)).group(1)
    stats, frame, _ = clean(path, tmp_path / "second", dialect={"encoding": value})
    assert set(frame["CUSTOMERNAME"]) == {"Zürich Modelle"} and frame.height == 200


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_almost_all_cjk_stops_as_binary_and_the_value_named_settles(rows, tmp_path, codec):
    # So much CJK text that fewer than 5% of the code units are ASCII: no NUL pattern to go by.
    name = "東京都株式会社やまと商事" * 1000
    path = tmp_path / "u16.csv"
    path.write_bytes(
        write_export(tmp_path / "plain.csv", [r | {"CUSTOMERNAME": name} for r in rows])
        .read_text()
        .encode(codec)
    )
    with pytest.raises(ExportError, match="binary file") as stopped:
        clean(path, tmp_path / "first")
    values = re.findall(r"ENCODING=([\w-]+)", str(stopped.value))
    assert codec in values, str(stopped.value)
    stats, frame, rejects = clean(path, tmp_path / "second", dialect={"encoding": codec})
    assert set(frame["CUSTOMERNAME"]) == {name} and frame.height == 200 and rejects.height == 0


def test_lines_in_two_encodings_stop_and_the_utf8_lines_setting_settles(rows, tmp_path):
    plain = write_export(tmp_path / "a.csv", [r | {"CITY": "Berguvsvägen"} for r in ascii_rows(rows[:100])])
    other = write_export(
        tmp_path / "b.csv", [r | {"CITY": "“Bräcke” – 4€"} for r in ascii_rows(rows[100:])], encoding="cp1252"
    )
    path = tmp_path / "mixed.csv"
    path.write_bytes(plain.read_bytes() + other.read_bytes().split(b"\n", 1)[1])
    stop_then_load(path, tmp_path, "utf8_lines", True, "lines are in two encodings")


def test_days_first_and_months_first_stop_and_the_date_order_setting_settles(rows, tmp_path):
    # Month-first dates with a day above 12 beside one day-first date with a day above 12, each agreeing
    # with the month column: the order cannot be taken from the file.
    def dated(i, row):
        if i == 0:
            return row | {"ORDERDATE": "25/1/2004 0:00", "MONTH_ID": "1", "QTR_ID": "1", "YEAR_ID": "2004"}
        return row | {
            "ORDERDATE": f"1/{13 + i % 15}/2004 0:00",
            "MONTH_ID": "1",
            "QTR_ID": "1",
            "YEAR_ID": "2004",
        }

    path = write_export(tmp_path / "mixed.csv", [dated(i, r) for i, r in enumerate(rows)])
    with pytest.raises(ExportError, match=r"dates read day-first in .* but month-first in .*DATE_ORDER"):
        clean(path, tmp_path / "first")
    stats, frame, rejects = clean(path, tmp_path / "second", dialect={"date_order": "month_first"})
    assert frame.height == 199 and rejects.height == 1  # the one day-first date is not a date in that order


def test_dates_no_number_settles_stop_and_the_date_order_setting_settles(rows, tmp_path):
    # Day and month both 12 or below in every date and no month column in the layout (as a caller such
    # as sales-predict reads): both orders read every date.
    from sales_serving.contract.export import ExportDialect, ExportLayout, ExportReading, open_export

    short = [r | {"ORDERDATE": f"{1 + i % 12}/{1 + (i + 3) % 12}/2004 0:00"} for i, r in enumerate(rows)]
    path = write_export(tmp_path / "short.csv", short)
    layout = ExportLayout(columns=tuple(rows[0]), date_column="ORDERDATE")
    with pytest.raises(
        ExportError, match=r"cannot tell whether dates are day-first or month-first"
    ) as stopped:
        open_export(path, layout, ExportReading(), tmp_path).resolve_date_order()
    value = re.search(r"DATE_ORDER=(\w+)", str(stopped.value)).group(1)
    assert value == "day_first" and "=month_first" in str(stopped.value)
    export = open_export(path, layout, ExportReading(dialect=ExportDialect(date_order=value)), tmp_path)
    assert export.resolve_date_order() == "day_first"


def test_both_decimal_marks_stop_and_the_decimal_mark_setting_settles(rows, tmp_path):
    styled = restyle(rows, "SALES", lambda v: f"{float(v):.2f}".replace(".", ","), every=7)
    path = write_export(tmp_path / "both.csv", styled)
    with pytest.raises(ExportError, match=r"numbers use both .* as the decimal mark.*DECIMAL_MARK"):
        clean(path, tmp_path / "first")
    stats, frame, rejects = clean(path, tmp_path / "second", dialect={"decimal_mark": "."})
    # The cells in the other spelling are then not numbers of the file's format: rejected, named.
    assert frame.height == 200 - rejects.height and set(rejects["rule"]) == {"SALES not a number"}


def test_a_thousands_separator_set_to_the_decimal_mark_stops_and_the_named_settings_settle(rows, tmp_path):
    styled = rows
    for column in ("SALES", "PRICEEACH", "MSRP"):
        styled = restyle(styled, column, lambda v: v.replace(".", ","))
    path = write_export(tmp_path / "comma.csv", styled, delimiter=";")
    with pytest.raises(
        ExportError, match=r"decimal mark and the thousands separator are both ','.*DECIMAL_MARK"
    ):
        clean(path, tmp_path / "first", dialect={"thousands_separator": ","})
    stats, frame, rejects = clean(
        path, tmp_path / "second", dialect={"thousands_separator": "", "decimal_mark": ","}
    )
    assert frame.height == 200 and rejects.height == 0


def test_many_malformed_lines_stop_and_the_setting_named_settles(rows, tmp_path, monkeypatch):
    # Backslash-escaped quotes met first after the part of the file the dialect is detected on: every
    # such line breaks under RFC 4180 quoting.
    from sales_serving.contract.export import encoding as encoding_module
    from sales_serving.contract.export import lines as lines_module

    monkeypatch.setattr(lines_module, "MAX_MALFORMED_LINES", 5)
    head_bytes = 1 << 10
    original = encoding_module.detect_quote_escape
    monkeypatch.setattr(
        "sales_serving.contract.export.reader.detect_quote_escape",
        lambda path, enc, limit_bytes=head_bytes: original(path, enc, limit_bytes),
    )
    quoted = [dict(r) for r in rows]
    for row in quoted[20:]:
        row["CUSTOMERNAME"] = 'The \\"Scale, Models\\" Co'
    text = write_export(tmp_path / "plain.csv", quoted).read_text()
    path = tmp_path / "escaped.csv"
    path.write_text(text.replace('"The \\""Scale, Models\\"" Co"', '"The \\"Scale, Models\\" Co"'))
    with pytest.raises(ExportError) as stopped:
        clean(path, tmp_path / "first")
    message = str(stopped.value)
    assert "more than 5 lines do not have the header's 25 fields" in message, message
    setting = re.search(r"DIALECT__(\w+)=(\w+)", message)
    assert setting, message
    stats, frame, rejects = clean(
        path, tmp_path / "second", dialect={setting.group(1).lower(): setting.group(2)}
    )
    assert frame.height == 200 and rejects.height == 0
    assert set(frame["CUSTOMERNAME"][20:]) <= {'The "Scale, Models" Co'} or 'The "Scale, Models" Co' in set(
        frame["CUSTOMERNAME"]
    )


@pytest.mark.parametrize("titles", [3, 14])
def test_title_lines_above_the_header_are_skipped_or_stop_and_the_header_line_setting_settles(
    rows, reference, tmp_path, titles
):
    # A few title lines are skipped by themselves; more than the reader looks past stop naming the line.
    path = tmp_path / "report.csv"
    body = write_export(tmp_path / "plain.csv", rows).read_text()
    path.write_text("".join(f"Sales report, part {i}\n" for i in range(titles)) + body)
    if titles <= 10:
        stats, frame, _ = clean(path, tmp_path / "first")
        assert frame.equals(reference)
        return
    with pytest.raises(ExportError) as stopped:
        clean(path, tmp_path / "first")
    message = str(stopped.value)
    assert f"line {titles + 1} is the first that names 25 expected column(s)" in message, message
    value = int(re.search(r"DIALECT__HEADER_LINE=(\d+)", message).group(1))
    stats, frame, _ = clean(path, tmp_path / "second", dialect={"header_line": value})
    assert frame.equals(reference)


def test_an_unknown_sep_line_stops_and_the_delimiter_setting_settles(rows, reference, tmp_path):
    # `sep=:` above a comma-separated file (an export tool's slip): the lines are read with the setting.
    path = tmp_path / "sep.csv"
    path.write_text("sep=:\n" + write_export(tmp_path / "plain.csv", rows).read_text())
    stop_then_load(
        path, tmp_path, "delimiter", ",", "names the delimiter ':', which the reader does not know"
    )
    stats, frame, _ = clean(path, tmp_path / "third", dialect={"delimiter": ","})
    assert frame.equals(reference)


def test_dates_in_a_form_the_reader_does_not_know_stop_and_the_date_formats_setting_settles(
    rows, reference, tmp_path
):
    from sales_assets.ingest.cleaning import EmptyInputError
    from sales_tests.contract.exports import order_date

    path = write_export(
        tmp_path / "basic.csv", restyle(rows, "ORDERDATE", lambda v: order_date(v).strftime("%Y%m%d"))
    )
    with pytest.raises(EmptyInputError) as stopped:
        clean(path, tmp_path / "first")
    message = str(stopped.value)
    assert "ORDERDATE not a date: 200 row(s)" in message and "SALES_INGEST__EXTRA_DATE_FORMATS" in message
    stats, frame, _ = clean(path, tmp_path / "second", ingest={"extra_date_formats": ["%Y%m%d"]})
    assert frame.equals(reference)


# Stops no setting can settle name the edit that does; each test applies that edit.


def test_a_column_named_twice_stops_and_renaming_one_settles(rows, reference, tmp_path):
    lines = write_export(tmp_path / "plain.csv", rows).read_text().split("\n")
    path = tmp_path / "twice.csv"
    path.write_text("\n".join([lines[0].replace("ADDRESSLINE2", "ADDRESSLINE1"), *lines[1:]]))
    with pytest.raises(ExportError, match=r"column ADDRESSLINE1: the header names this column twice: rename"):
        clean(path, tmp_path / "first")
    path.write_text("\n".join(lines))  # one of the two renamed back
    assert clean(path, tmp_path / "second")[1].equals(reference)


@pytest.mark.parametrize("damage", ["missing", "nul"])
def test_a_missing_required_column_stops_naming_the_edit_that_settles(rows, reference, tmp_path, damage):
    lines = write_export(tmp_path / "plain.csv", rows).read_text().split("\n")
    header = lines[0].replace("SALES", "SA\x00LES" if damage == "nul" else "AMOUNT", 1)
    path = tmp_path / "header.csv"
    path.write_bytes("\n".join([header, *lines[1:]]).encode())
    advice = "a NUL byte .* sits in the header: remove it" if damage == "nul" else "add them, or name them as"
    with pytest.raises(ExportError, match=rf"missing required column\(s\) SALES; .*{advice}"):
        clean(path, tmp_path / "first")
    path.write_text("\n".join(lines))  # the column named as the layout does
    assert clean(path, tmp_path / "second")[1].equals(reference)


def test_an_unnamed_field_holding_values_stops_and_naming_it_settles(rows, tmp_path):
    lines = write_export(tmp_path / "plain.csv", rows).read_text().splitlines()
    path = tmp_path / "unnamed.csv"
    path.write_text("\n".join([lines[0] + ",", *(line + ",x" for line in lines[1:])]) + "\n")
    with pytest.raises(ExportError, match=r"field 26 has no name in the header but holds values; name it"):
        clean(path, tmp_path / "first")
    path.write_text("\n".join([lines[0] + ",NOTE", *(line + ",x" for line in lines[1:])]) + "\n")
    stats, frame, rejects = clean(path, tmp_path / "second")
    assert frame.height == 200 and rejects.height == 0


def test_a_header_naming_as_many_columns_under_two_delimiters_stops_and_its_advice_settles(rows, tmp_path):
    # `ORDERNUMBER,NOTE;SALES` names one column under ',' and one under ';': a header mixing delimiters.
    from sales_serving.contract.export import ExportLayout, ExportReading, open_export

    layout = ExportLayout(columns=("ORDERNUMBER", "SALES"), required=("ORDERNUMBER", "SALES"))
    body = "".join(f"{r['ORDERNUMBER']};x;{r['SALES']}\n" for r in rows)
    path = tmp_path / "two.csv"
    path.write_text("ORDERNUMBER,NOTE;SALES\n" + body)
    with pytest.raises(ExportError, match=r"cannot tell the delimiter") as stopped:
        open_export(path, layout, ExportReading(), tmp_path)
    message = str(stopped.value)
    assert (
        "DELIMITER=, or =;, the one the rows are written with (a header mixing delimiters is written "
        in message
    )
    path.write_text("ORDERNUMBER;NOTE;SALES\n" + body)  # the header written again with the rows' ';'
    export = open_export(path, layout, ExportReading(), tmp_path)
    assert export.header.names == ("ORDERNUMBER", "NOTE", "SALES") and export.dialect.delimiter == ";"
