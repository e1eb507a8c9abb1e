"""The one CSV writer of the project: every CSV it writes (summaries, EDA tables, `sales-predict --out`)
goes through here, so no cell, header cells included, can run as a spreadsheet formula.

OWASP's CSV injection rule (https://owasp.org/www-community/attacks/CSV_Injection): a cell that starts
with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, even text that looks like a
number (`-4` in a text column). Only numbers are written as they are: numeric columns of a frame, Python
ints and floats, and `NumberText`, text the caller has parsed as a number.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import polars as pl

FORMULA_START = r"^[=+\-@\t\r]"
_FORMULA_START = re.compile(FORMULA_START)


class NumberText(str):
    """A cell's text that the caller parsed as a number (`-4`, `1.234,50`): written as it is."""

    __slots__ = ()


def safe_cell(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet would run as a formula; numbers,
    NumberText, None and other text unchanged."""
    if isinstance(value, str) and not isinstance(value, NumberText) and _FORMULA_START.match(value):
        return "'" + value
    return value


def safe_text(column: str) -> pl.Expr:
    """`safe_cell` as a Polars expression over a text (String, Categorical or Enum) column."""
    text = pl.col(column).cast(pl.String)
    return pl.when(text.str.contains(FORMULA_START)).then(pl.lit("'") + text).otherwise(text).alias(column)


class SafeCsvWriter:
    """`csv.writer` whose every row, the header's too, is written through `safe_cell`."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in cells])


def write_frame_csv(frame: pl.DataFrame, target: Path) -> Path:
    """Write `frame` as CSV to `target` with every text cell and column name made safe (`safe_cell`)."""
    text = [
        c
        for c, dtype in frame.schema.items()
        if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))
    ]
    safe = frame.with_columns(safe_text(c) for c in text)
    safe = safe.rename({c: safe_cell(c) for c in safe.columns if safe_cell(c) != c})
    safe.write_csv(target)
    return target
