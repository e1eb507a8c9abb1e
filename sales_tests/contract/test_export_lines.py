"""Lines on evidence: every line-end convention, a NUL byte inside a field, a trailing delimiter on every
row, Excel's `sep=X` first line and report titles above the header, each on exports generated from the
sample; each reads to the same clean layer as the plain file or rejects only the damaged line."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from sales_assets.ingest.cleaning import RULE_MALFORMED
from sales_tests.contract.exports import clean, write_export


def with_line_ends(text: str, ends: list[str]) -> bytes:
    """`text` (LF lines) with its line ends taken from `ends` in turn."""
    lines = text.split("\n")[:-1]
    return "".join(line + end for line, end in zip(lines, itertools.cycle(ends), strict=False)).encode()


@pytest.mark.parametrize(
    ("ends", "named"),
    [
        (["\n"], "LF"),
        (["\r\n"], "CRLF"),
        (["\r"], "CR"),
        (["\r", "\n"], "mixed (100 LF, 101 CR)"),
        (["\r\n", "\r", "\n"], "mixed (67 LF, 67 CRLF, 67 CR)"),
    ],
)
def test_every_line_end_reads_the_same_rows(rows, reference, tmp_path, ends, named):
    plain = write_export(tmp_path / "plain.csv", rows).read_text()
    path = tmp_path / "ends.csv"
    path.write_bytes(with_line_ends(plain, ends))
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert stats.dialect.line_ends == named
    assert frame.equals(reference)


@pytest.mark.parametrize("column", ["CUSTOMERNAME", "SALES", "DEALSIZE"])
def test_a_nul_byte_in_a_field_rejects_that_line_only(rows, reference, tmp_path, column):
    damaged = [dict(row) for row in rows]
    damaged[9][column] = damaged[9][column][:2] + "\x00" + damaged[9][column][2:]
    stats, frame, rejects = clean(write_export(tmp_path / "nul.csv", damaged), tmp_path / "out")
    assert (stats.rows_clean, stats.rows_malformed) == (199, 1)
    (reject,) = rejects.rows(named=True)
    position = list(rows[0]).index(column) + 1
    assert reject["source_line"] == 11 and reject["rule"] == RULE_MALFORMED
    assert (
        reject["reason"]
        == f"holds a NUL byte (\\x00) in field {position} ({column}): a damaged line, not text"
    )
    damaged_row = (pl.col("ORDERNUMBER") == int(rows[9]["ORDERNUMBER"])) & (
        pl.col("ORDERLINENUMBER") == int(rows[9]["ORDERLINENUMBER"])
    )
    kept = reference.filter(~damaged_row)
    assert kept.height == 199
    assert frame.equals(kept)


@pytest.mark.parametrize("header_too", [False, True])
def test_a_trailing_delimiter_on_every_row_is_an_empty_column_dropped(rows, reference, tmp_path, header_too):
    lines = write_export(tmp_path / "plain.csv", rows).read_text().splitlines()
    body = [line + "," for line in lines[1:]]
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join([lines[0] + ("," if header_too else ""), *body]) + "\n")
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert frame.equals(reference)


@pytest.mark.parametrize(
    ("delimiter", "sep_line"), [(";", "sep=;"), (",", "sep=,"), ("\t", '"sep=\t"'), ("|", "SEP=|")]
)
def test_excels_sep_line_names_the_delimiter(rows, reference, tmp_path, delimiter, sep_line):
    body = write_export(tmp_path / "plain.csv", rows, delimiter=delimiter).read_text()
    path = tmp_path / "sep.csv"
    path.write_text(sep_line + "\n" + body)
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert stats.dialect.delimiter == delimiter
    assert stats.dialect.evidence["delimiter"] == "the file's sep= line"
    assert stats.dialect.lines_above_header == 1
    assert frame.equals(reference)


@pytest.mark.parametrize(
    "titles",
    [
        ["Sales report 2003-2005"],
        ["Sales report", "Exported 2005-06-01 by ERP, all regions", ""],
        ['"Quarterly, ""all"" territories"', "Region;EMEA", "", "Amounts in USD"],
    ],
)
def test_title_lines_above_the_header_are_skipped_and_counted(rows, reference, tmp_path, titles):
    body = write_export(tmp_path / "plain.csv", rows).read_text().splitlines()
    body[5] += ",one field too many"  # a malformed line keeps its line number in the file
    path = tmp_path / "titled.csv"
    path.write_text("\n".join([*titles, *body]) + "\n")
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert stats.dialect.lines_above_header == len(titles)
    assert stats.dialect.evidence["header"].startswith(f"line {len(titles) + 1}: {len(titles)} title line")
    assert (stats.rows_in, stats.rows_malformed, stats.rows_clean) == (200, 1, 199)
    assert rejects["source_line"].to_list() == [len(titles) + 6]
    assert rejects["raw_line"].to_list() == [body[5]]
    assert frame.height == 199
