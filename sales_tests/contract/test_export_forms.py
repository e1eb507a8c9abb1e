"""Ordinary forms a right reader needs no setting for: ISO 8601 with `T`, `Z` or an offset; integral
floats in integer columns; Excel 1900 and 1904 day numbers; month names in English and the common European
languages; `’` and `'` thousands separators. Each reads to the same clean layer as the plain export."""

from __future__ import annotations

import datetime as dt

import pytest

from sales_tests.contract.exports import (
    clean,
    excel_thousands,
    order_date,
    restyle,
    write_export,
)

MONTHS = {
    "sv": [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ],
    "da": [
        "januar",
        "februar",
        "marts",
        "april",
        "maj",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "december",
    ],
    "no": [
        "januar",
        "februar",
        "mars",
        "april",
        "mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "desember",
    ],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "de": [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ],
    "fr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."],
    "es": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"],
    "it": [
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ],
    "nl": ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
    "pt": ["jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez"],
}


def same_as_reference(path, reference, tmp_path, **settings):
    stats, frame, rejects = clean(path, tmp_path / "out", **settings)
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert frame.equals(reference)
    return stats


@pytest.mark.parametrize(
    "style",
    [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S+02:00",
        "%Y-%m-%dT%H:%M:%S.000Z",
        "%Y-%m-%dT%H:%M:%S-0500",
        "%Y-%m-%dT%H:%M",
    ],
)
def test_iso_8601_with_t_z_or_an_offset(rows, reference, tmp_path, style):
    styled = restyle(rows, "ORDERDATE", lambda v: order_date(v).strftime(style))
    same_as_reference(write_export(tmp_path / "iso.csv", styled), reference, tmp_path)


@pytest.mark.parametrize("spelling", ["{}.0", "{}.00", "{}E+00", "{:.1E}"])
@pytest.mark.parametrize("column", ["QUANTITYORDERED", "ORDERNUMBER", "MONTH_ID"])
def test_integral_floats_in_integer_columns(rows, reference, tmp_path, spelling, column):
    def float_text(value: str) -> str:
        return spelling.format(float(value) if "E" in spelling and ":" in spelling else int(value))

    styled = restyle(rows, column, float_text)
    if spelling == "{:.1E}" and column == "ORDERNUMBER":
        pytest.skip("1.0E+04 rounds a five-digit order number: not integral at that precision")
    same_as_reference(write_export(tmp_path / "floats.csv", styled), reference, tmp_path)


def test_three_e_plus_one_quantities_read_as_thirty(rows, reference, tmp_path):
    styled = restyle(rows, "QUANTITYORDERED", lambda v: f"{int(v) / 10:g}E+01" if int(v) % 10 == 0 else v)
    assert any("E+01" in r["QUANTITYORDERED"] for r in styled)
    same_as_reference(write_export(tmp_path / "sci.csv", styled), reference, tmp_path)


def test_a_fractional_quantity_is_still_rejected(rows, tmp_path):
    styled = restyle(rows, "QUANTITYORDERED", lambda v: v + ".5", every=50)
    stats, _, rejects = clean(write_export(tmp_path / "half.csv", styled), tmp_path / "out")
    assert stats.rows_rejected == 4
    assert set(rejects["rule"]) == {"QUANTITYORDERED not a whole number"}


@pytest.mark.parametrize(
    ("system", "epoch"), [(1900, dt.datetime(1899, 12, 30)), (1904, dt.datetime(1904, 1, 1))]
)
def test_excel_day_numbers_in_either_date_system(rows, reference, tmp_path, system, epoch):
    styled = restyle(rows, "ORDERDATE", lambda v: str((order_date(v) - epoch).days))
    stats = same_as_reference(write_export(tmp_path / "serial.csv", styled), reference, tmp_path)
    assert stats.dialect.excel_date_system == system


def test_the_1904_system_from_settings(rows, reference, tmp_path):
    epoch = dt.datetime(1904, 1, 1)
    styled = restyle(rows, "ORDERDATE", lambda v: str((order_date(v) - epoch).days))
    path = write_export(tmp_path / "serial.csv", styled)
    stats = same_as_reference(path, reference, tmp_path, dialect={"excel_date_system": 1904})
    assert stats.dialect.evidence["excel_date_system"] == "from settings"


@pytest.mark.parametrize("language", list(MONTHS))
@pytest.mark.parametrize(
    "layout",
    ["{d}-{m}-{y}", "{d}. {m} {y}", "{d} {m} {y} 00:00", "{m} {d}, {y}", "{d}-{m}-{yy}", "{d} de {m} de {y}"],
)
def test_month_names_in_english_and_the_common_european_languages(
    rows, reference, tmp_path, language, layout
):
    def named(value: str) -> str:
        date = order_date(value)
        month = MONTHS[language][date.month - 1]
        return layout.format(d=date.day, m=month, y=date.year, yy=f"{date.year % 100:02d}")

    styled = restyle(rows, "ORDERDATE", named)
    same_as_reference(write_export(tmp_path / "named.csv", styled), reference, tmp_path)


@pytest.mark.parametrize("mark", ["’", "'"])
def test_apostrophes_as_thousands_separators(rows, reference, tmp_path, mark):
    styled = restyle(rows, "SALES", lambda v: excel_thousands(v, thousands=mark))
    assert any(mark in r["SALES"] for r in styled)
    stats = same_as_reference(write_export(tmp_path / "swiss.csv", styled), reference, tmp_path)
    assert stats.dialect.thousands_separator == mark
