"""Numbers as exports spell them: the file's decimal mark, thousands separator and currency signs decided
from its money and count columns, and the strict expressions that turn their text into values."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import polars as pl

from sales_serving.contract.export.dialect import Dialect, tidy_text
from sales_serving.contract.export.errors import MAX_SEEN, SETTING_PREFIX, cut, export_error
from sales_serving.contract.export.settings import ExportDialect, ExportReading


def _currency_pattern(signs: Sequence[str]) -> str:
    return "|".join(re.escape(s) for s in sorted(signs, key=len, reverse=True))


@dataclass
class NumberFormat:
    decimal_mark: str = "."
    thousands_separator: str = ""
    currency_signs: tuple[str, ...] = ()
    evidence: str = "no separators seen"


# Marks that are only ever thousands separators: apostrophes (Swiss `2'871.00`, `2’871.00`) and spaces.
SPACE_LIKE_THOUSANDS = "'’ \u00a0\u202f"


class Seen(NamedTuple):
    """One number cell of the sample: where it is and its text."""

    column: str
    line: int
    text: str


@dataclass
class SeparatorVotes:
    """What the sampled number cells say about the separators, each mark with the first cell showing it."""

    decimal: dict[str, Seen] = field(default_factory=dict)
    thousands: dict[str, Seen] = field(default_factory=dict)
    # Cells with one separator followed by exactly three digits (`1,234`): either mark; with the separator.
    ambiguous: list[tuple[Seen, str]] = field(default_factory=list)
    signs: set[str] = field(default_factory=set)


def _vote(votes: SeparatorVotes, seen: Seen, signs_pattern: re.Pattern[str]) -> None:
    """Add what one cell says: two kinds of mark settle both (`2,871.00`); a space-like mark or a repeated
    one is a thousands separator; one mark not followed by exactly three digits is a decimal mark."""
    signs = signs_pattern.findall(seen.text)
    votes.signs.update(signs)
    bare = signs_pattern.sub("", seen.text).strip().lstrip("+-").strip()
    if not bare or not re.fullmatch(r"[\d.,'’ \u00a0\u202f]+", bare) or not bare[0].isdigit():
        return  # not a number in any format: rejected later with its reason
    marks = [c for c in bare if not c.isdigit()]
    if not marks:
        return
    kinds = list(dict.fromkeys(marks))
    if len(kinds) == 2:
        votes.decimal.setdefault(marks[-1], seen)
        votes.thousands.setdefault(kinds[0] if kinds[0] != marks[-1] else kinds[1], seen)
    elif kinds[0] in SPACE_LIKE_THOUSANDS or len(marks) > 1:
        votes.thousands.setdefault(kinds[0], seen)
    elif len(bare) - bare.index(kinds[0]) - 1 != 3:
        votes.decimal.setdefault(kinds[0], seen)
    else:
        votes.ambiguous.append((seen, kinds[0]))


def _decimal_mark(path: Path, votes: SeparatorVotes, override: ExportDialect) -> str:
    """The decimal mark: from settings, else the one the cells vote for, else the other of a `.`/`,`
    thousands separator; `.` when no cell has a separator."""
    if len(votes.decimal) > 1 and override.decimal_mark is None:
        (a, first), (b, second) = list(votes.decimal.items())[:2]
        raise export_error(
            path,
            f"numbers use both {a!r} (line {first.line}: {cut(first.text)}) and {b!r} as the decimal mark",
            line=second.line,
            column=second.column,
            seen=second.text,
            setting=f"{SETTING_PREFIX}DECIMAL_MARK",
        )
    decimal = override.decimal_mark or next(iter(votes.decimal), None)
    thousands = [t for t in votes.thousands if t != decimal]
    if decimal is None and thousands and thousands[0] in ".,":
        decimal = "," if thousands[0] == "." else "."
    if decimal is None and votes.ambiguous:
        seen, _ = votes.ambiguous[0]
        raise export_error(
            path,
            "cannot tell whether the separator in numbers like this is a decimal mark or a thousands "
            "separator, and no other number settles it",
            line=seen.line,
            column=seen.column,
            seen=seen.text,
            setting=f"{SETTING_PREFIX}DECIMAL_MARK (and THOUSANDS_SEPARATOR)",
        )
    return decimal or "."


def _thousands_separator(path: Path, votes: SeparatorVotes, decimal: str, override: ExportDialect) -> str:
    """The thousands separator: from settings, else the one mark the cells vote for ("" for none)."""
    if override.thousands_separator is not None:
        thousands = override.thousands_separator
    else:
        candidates = [t for t in votes.thousands if t != decimal]
        candidates += [mark for _, mark in votes.ambiguous if mark != decimal][:1]
        thousands = candidates[0] if candidates else ""
        if len(set(candidates)) > 1:
            raise export_error(
                path,
                f"numbers use more than one thousands separator ({', '.join(map(repr, set(candidates)))})",
                setting=f"{SETTING_PREFIX}THOUSANDS_SEPARATOR",
            )
    if thousands == decimal:
        raise export_error(
            path,
            f"the decimal mark and the thousands separator are both {decimal!r}",
            setting=f"{SETTING_PREFIX}DECIMAL_MARK and THOUSANDS_SEPARATOR",
        )
    return thousands


def detect_number_format(
    path: Path, values: dict[str, list[tuple[int, str]]], reading: ExportReading
) -> NumberFormat:
    """Decimal mark, thousands separator and currency signs of the number columns, decided for the file.

    `values` maps a column to (line, text) samples. `2,871.00` and `2.871,00` settle both marks; `95,7`
    settles a decimal comma; `1,234` alone could be either and, with nothing else to go by, stops the run.
    Groups of digits split by an apostrophe or a (no-break) space are thousands.
    """
    override = reading.dialect
    signs_pattern = re.compile(_currency_pattern(reading.known_currency_signs))
    votes = SeparatorVotes()
    for column, samples in values.items():
        for line, text in samples:
            _vote(votes, Seen(column, line, text), signs_pattern)
    decimal = _decimal_mark(path, votes, override)
    thousands = _thousands_separator(path, votes, decimal, override)
    signs = (
        tuple(override.currency_signs) if override.currency_signs is not None else tuple(sorted(votes.signs))
    )
    evidence = ", ".join(
        f"{kind} {mark!r} from {cut(seen.text)} (line {seen.line}, {seen.column})"
        for kind, marks in (("decimal", votes.decimal), ("thousands", votes.thousands))
        for mark, seen in marks.items()
    )
    return NumberFormat(decimal, thousands, signs, evidence or "no separators seen")


def _plain_number_text(text: pl.Expr, dialect: Dialect) -> pl.Expr:
    """Trimmed text of a number with the file's currency signs and thousands separators removed and a
    decimal point; null where the thousands grouping is malformed (`1,2,3`)."""
    if dialect.currency_signs:
        text = text.str.replace_all(_currency_pattern(dialect.currency_signs), "").str.strip_chars()
    if dialect.thousands_separator:
        sep, dec = re.escape(dialect.thousands_separator), re.escape(dialect.decimal_mark)
        grouped = rf"^[+-]?(?:\d{{1,3}}(?:{sep}\d{{3}})+|\d+)(?:{dec}\d*)?(?:[eE][+-]?\d+)?$"
        text = pl.when(text.str.contains(grouped)).then(
            text.str.replace_all(dialect.thousands_separator, "", literal=True)
        )
    if dialect.decimal_mark != ".":
        text = text.str.replace(dialect.decimal_mark, ".", literal=True)
    return text


def number_value(column: str, dialect: Dialect) -> pl.Expr:
    """Float64 of a number column's text; null unless the text is a finite number in the file's format
    (`NaN`, `inf`, `Infinity` and values that overflow are null)."""
    return finite(parsed_number(column, dialect))


def parsed_number(column: str, dialect: Dialect) -> pl.Expr:
    """Float64 of a number column's text in the file's format, `NaN` and infinities included (`finite`
    then makes them null): `number_value` in two steps, for a streaming query, which evaluates an
    expression used twice twice."""
    return _plain_number_text(tidy_text(pl.col(column), dialect), dialect).cast(pl.Float64, strict=False)


def finite(value: pl.Expr) -> pl.Expr:
    """`value` where it is a finite number, else null."""
    return pl.when(value.is_finite()).then(value)


# Integral floats up to this magnitude are exact in a float64, so `30.0` or `3E+01` is the integer 30.
MAX_EXACT_FLOAT_INTEGER = 2**53


def integer_value(column: str, dialect: Dialect) -> pl.Expr:
    """Int64 of an integer column's text: parsed as an integer first (never through a float, so a
    17-digit ORDERNUMBER stays exact), else, when the file writes integers so (`Dialect.integral_floats`),
    as an integral float (`30.0`, `3E+01`) within 2**53; null when the text is not a whole number or
    does not fit 64 bits."""
    plain = _plain_number_text(tidy_text(pl.col(column), dialect), dialect)
    if not dialect.integral_floats:
        return plain.cast(pl.Int64, strict=False)
    as_float = plain.cast(pl.Float64, strict=False)
    integral = (as_float.floor() == as_float) & (as_float.abs() <= MAX_EXACT_FLOAT_INTEGER)
    return pl.coalesce(plain.cast(pl.Int64, strict=False), pl.when(integral).then(as_float.cast(pl.Int64)))


def number_reason(column: str, dialect: Dialect, kind: str) -> pl.Expr:
    """Why a number column's text has no value (only evaluated for rejected rows)."""
    raw = tidy_text(pl.col(column), dialect)
    plain = _plain_number_text(raw, dialect)
    if kind == "whole number":
        in_range = plain.str.contains(r"^[+-]?\d+(?:\.0*)?$")
        detail = pl.when(in_range).then(pl.lit("is out of range for a 64-bit integer"))
    else:
        finite_text = plain.str.contains(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
        detail = pl.when(finite_text).then(pl.lit("is out of range (overflows)"))
    seen = raw.str.slice(0, MAX_SEEN)
    return pl.format(f"{column} '{{}}' {{}}", seen, detail.otherwise(pl.lit(f"is not a {kind}")))
