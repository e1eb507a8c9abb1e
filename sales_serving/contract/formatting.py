"""Numbers as a person reads them: the one formatter of money, shares, counts, labels and other measures
for the Dagster UI's tables, the dashboard, the API's default answer and the README's figures.

Standard library only, so the serving package and the code location both import it cheaply.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

# The export's amounts (SALES, PRICEEACH, MSRP, and so the models' errors) are US dollars.
CURRENCY = "USD"
# Money to the cent; a share (R², coverage, a fraction of rows) to three decimals.
MONEY_DECIMALS = 2
SHARE_DECIMALS = 3
# Percentages (already multiplied by 100) to one decimal; other measures to four significant digits.
PERCENT_DECIMALS = 1
MEASURE_DIGITS = 4
# The same money rule in d3-format, for Vega-Lite charts (tooltips): `$3,516,980.00`.
MONEY_D3_FORMAT = f"$,.{MONEY_DECIMALS}f"


class Quantity(StrEnum):
    """What a number means, which decides how it is rounded and written."""

    MONEY = "money"  # USD amounts: `3,516,980.00`
    SHARE = "share"  # a fraction in [0, 1] or a score such as R²: `0.667`
    PERCENT = "percent"  # a percentage: `12.5%`
    COUNT = "count"  # a whole number of things: `2,823`
    LABEL = "label"  # a number that names something (a year, an order number): `2004`, `10107`
    MEASURE = "measure"  # any other quantity (seconds, a model parameter): `546.6`, `1.235e-05`


def round_money(amount: float) -> float:
    """`amount` (USD) rounded to the cent, as a number (the API's default answer): 3208.949951171875 ->
    3208.95. NaN and infinities pass unchanged."""
    return round(amount, MONEY_DECIMALS) if math.isfinite(amount) else amount


def money_number(amount: float) -> str:
    """`amount` (USD) to the cent as a plain number that a CSV reader or a spreadsheet parses back (no
    thousands separator, unlike `money`): 3208.949951171875 -> `3208.95`, 3209 -> `3209.00`."""
    return f"{amount:.{MONEY_DECIMALS}f}"


def round_share(value: float) -> float:
    """A share rounded to three decimals, as a number (a metadata value the UI charts): 0.6666666666666666
    -> 0.667. NaN and infinities pass unchanged."""
    return round(value, SHARE_DECIMALS) if math.isfinite(value) else value


def money(amount: float | None, symbol: bool = False) -> str:
    """`3516980` -> `3,516,980.00` (with `symbol`, `$3,516,980.00`; a negative amount `-$12.50`). None is
    an empty string."""
    if amount is None:
        return ""
    text = f"{abs(amount):,.{MONEY_DECIMALS}f}"
    sign = "-" if amount < 0 and text.strip("0.,") else ""
    return f"{sign}{'$' if symbol else ''}{text}"


def share(value: float) -> str:
    """`0.6666666666666666` -> `0.667`."""
    return f"{value:.{SHARE_DECIMALS}f}"


def percent(value: float) -> str:
    """A percentage already multiplied by 100: `12.3456` -> `12.3%`."""
    return f"{value:.{PERCENT_DECIMALS}f}%"


def count(value: int) -> str:
    """`3516980` -> `3,516,980`."""
    return f"{value:,}"


def measure(value: float | int) -> str:
    """Four significant digits, thousands separated and never in exponent form from 1,000 up: `546.6`,
    `0.1`, `1.235e-05`, `1,234,568`; an integer is written whole with separators."""
    if isinstance(value, int):
        return count(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{MEASURE_DIGITS}g}"


def format_quantity(value: Any, quantity: Quantity) -> str:
    """`value` written as `quantity` says. None, NaN and infinities are empty cells; a bool or a non-number
    is written as text whatever the quantity."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if quantity is Quantity.LABEL:
        return str(value)
    if quantity is Quantity.COUNT and isinstance(value, int):
        return count(value)
    writer = {
        Quantity.MONEY: money,
        Quantity.SHARE: share,
        Quantity.PERCENT: percent,
        Quantity.COUNT: measure,  # a count that arrives as a float (a mean) keeps its fraction
        Quantity.MEASURE: measure,
    }[quantity]
    return writer(value)
