"""Segments and their monthly SALES series: segment keys, file-safe names, and the month-start series with
gaps filled, zero months counted and a partial last month flagged. pandas is imported where a series is
built, so the segment keys cost nothing to import."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

# Monthly data: the seasonal period of every seasonal model and baseline.
SEASONAL_PERIOD = 12
ALL = "ALL"
# Separates PRODUCTLINE and COUNTRY in a partition key ("Classic Cars|USA"); neither column contains it.
KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class Segment:
    """A slice of the sales table: everything, one PRODUCTLINE, or one PRODUCTLINE in one COUNTRY."""

    product_line: str | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        if self.country is not None and self.product_line is None:
            raise ValueError(f"segment with COUNTRY={self.country!r} needs a PRODUCTLINE too")

    @property
    def key(self) -> str:
        """The partition key shown in the UI: `ALL`, `Classic Cars` or `Classic Cars|USA`."""
        if self.product_line is None:
            return ALL
        if self.country is None:
            return self.product_line
        return f"{self.product_line}{KEY_SEPARATOR}{self.country}"

    @property
    def file_stem(self) -> str:
        """`sales_ts_risk_<product>_<country>` with every run of non-alphanumerics as one underscore."""
        parts = (self.product_line or ALL, self.country or ALL)
        return "sales_ts_risk_" + "_".join(re.sub(r"[^0-9A-Za-z]+", "_", p).strip("_") or "_" for p in parts)

    @classmethod
    def from_key(cls, key: str) -> Segment:
        if key == ALL:
            return cls()
        product_line, _, country = key.partition(KEY_SEPARATOR)
        if not product_line or (KEY_SEPARATOR in key and not country):
            raise ValueError(
                f"segment key {key!r}: expected 'ALL', '<PRODUCTLINE>' or '<PRODUCTLINE>|<COUNTRY>'"
            )
        return cls(product_line=product_line, country=country or None)


@dataclass(frozen=True)
class MonthlySeries:
    """Monthly SALES of one segment over the whole data window.

    `sales` covers every month from the first to the last month of the data (not just the segment's),
    so segments are comparable and a month without orders is a real zero. `model_sales` is what models
    see: `sales` without a partial last month, whose low total would read as a collapse.
    """

    sales: pd.Series
    partial_last_month: bool
    first_order_date: datetime
    last_order_date: datetime

    @property
    def model_sales(self) -> pd.Series:
        return self.sales.iloc[:-1] if self.partial_last_month else self.sales

    @property
    def zero_months(self) -> list[str]:
        return [month.strftime("%Y-%m") for month, value in self.model_sales.items() if value == 0]


def month_is_complete(last_order_date: date | datetime) -> bool:
    """The data covers its last month only when it runs to that month's final day."""
    last_day = calendar.monthrange(last_order_date.year, last_order_date.month)[1]
    return last_order_date.day == last_day


def build_monthly_series(
    month_totals: pl.DataFrame, first_order_date: datetime, last_order_date: datetime
) -> MonthlySeries:
    """The month-start series of one segment from its per-month totals (columns `month`, `sales`).

    Months of the data window with no row in `month_totals` become 0. `first_order_date` and
    `last_order_date` are the extent of the whole table, so the last month is flagged partial when the
    data stops before that month's last day.
    """
    import pandas as pd

    missing = {"month", "sales"} - set(month_totals.columns)
    if missing:
        raise KeyError(f"month totals: missing column(s) {sorted(missing)}; expected 'month' and 'sales'")
    if last_order_date < first_order_date:
        raise ValueError(f"data window: last order date {last_order_date} is before first {first_order_date}")
    index = pd.date_range(
        pd.Timestamp(first_order_date).to_period("M").to_timestamp(),
        pd.Timestamp(last_order_date).to_period("M").to_timestamp(),
        freq="MS",
        name="month",
    )
    totals = month_totals.to_pandas()
    observed = pd.Series(
        totals["sales"].to_numpy(dtype=float),
        index=pd.DatetimeIndex(totals["month"]).to_period("M").to_timestamp(),
    )
    outside = observed.index.difference(index)
    if len(outside):
        raise ValueError(
            f"month totals: months {list(outside.strftime('%Y-%m'))} lie outside the data window"
        )
    sales = observed.groupby(level=0).sum().reindex(index, fill_value=0.0).rename("sales")
    sales.index.freq = "MS"
    return MonthlySeries(
        sales=sales,
        partial_last_month=not month_is_complete(last_order_date),
        first_order_date=first_order_date,
        last_order_date=last_order_date,
    )
