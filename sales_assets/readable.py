"""Polars tables written for people: each number column as the `Quantity` its dtype, name and description
say (money to the cent, shares to three decimals, counts with separators), by
`sales_serving.contract.formatting`. Used by the Dagster metadata tables, the EDA Markdown and the
dashboard; imports neither dagster nor streamlit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import polars as pl

from sales_serving.contract.formatting import Quantity, format_quantity

# Whole numbers in these columns are labels (2004, 10107), not quantities: no thousands separators.
_LABEL_SUFFIXES = ("YEAR", "MONTH", "_ID", "NUMBER")
# Float columns that hold USD amounts or shares under these names wherever they appear (a column description
# that says "USD" or "%" marks others); any other float column is a measure, an integer column a count.
_MONEY_NAME = re.compile(r"(?i)(rmse|mae|sales|forecast|shap|(lower|upper)_\d+)")
_SHARE_NAME = re.compile(r"(?i)(^|_)(r2|coverage|psi|score|share)(_|$)")


def _is_label(column: str) -> bool:
    return column.upper().endswith(_LABEL_SUFFIXES)


def column_quantity(name: str, dtype: pl.DataType, description: str = "") -> Quantity | None:
    """What the numbers of column `name` mean (`formatting.Quantity`), from its dtype, its name and its
    description; None for a column that holds no numbers."""
    if dtype.is_integer():
        return Quantity.LABEL if _is_label(name) else Quantity.COUNT
    if not (dtype.is_float() or dtype.is_decimal()):
        return None
    if "USD" in description or _MONEY_NAME.search(name):
        return Quantity.MONEY
    if "%" in description or name.lower().endswith("pct"):
        return Quantity.PERCENT
    if _SHARE_NAME.search(name):
        return Quantity.SHARE
    return Quantity.MEASURE


def readable_columns(
    frame: pl.DataFrame,
    quantities: Mapping[str, Quantity] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """`frame` with every number column written as a person reads it (`formatting.format_quantity`):
    money to the cent with separators, shares to three decimals, counts with separators. A column's
    quantity is `quantities[name]` or else `column_quantity`'s; text and other columns are left as they are.
    Returns a frame of the same shape whose number columns are strings (None, NaN and infinities empty)."""
    quantities, descriptions = quantities or {}, descriptions or {}
    written = []
    for name, dtype in frame.schema.items():
        quantity = quantities.get(name) or column_quantity(name, dtype, descriptions.get(name, ""))
        if quantity is not None:
            written.append(
                pl.col(name).map_elements(
                    lambda value, q=quantity: format_quantity(value, q),
                    return_dtype=pl.String,
                    skip_nulls=False,
                )
            )
    return frame.with_columns(written)
