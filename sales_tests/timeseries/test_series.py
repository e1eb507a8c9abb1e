from datetime import datetime

import pandas as pd
import polars as pl
import pytest

from sales_assets.timeseries.series import Segment, build_monthly_series, month_is_complete


def totals(months: list[str], values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"month": [datetime.fromisoformat(m + "-01") for m in months], "sales": values})


def test_gaps_become_zero_months_on_a_month_start_index() -> None:
    series = build_monthly_series(
        totals(["2003-02", "2003-05"], [10.0, 40.0]), datetime(2003, 1, 6), datetime(2003, 6, 30)
    )
    assert series.sales.index.freqstr == "MS"
    assert list(series.sales.index.strftime("%Y-%m")) == [
        "2003-01",
        "2003-02",
        "2003-03",
        "2003-04",
        "2003-05",
        "2003-06",
    ]
    assert series.sales.tolist() == [0.0, 10.0, 0.0, 0.0, 40.0, 0.0]
    assert series.zero_months == ["2003-01", "2003-03", "2003-04", "2003-06"]
    assert not series.partial_last_month


def test_last_month_is_partial_when_the_data_ends_before_its_last_day() -> None:
    series = build_monthly_series(
        totals(["2005-01", "2005-02"], [100.0, 30.0]), datetime(2005, 1, 3), datetime(2005, 2, 14)
    )
    assert series.partial_last_month
    assert series.sales.tolist() == [100.0, 30.0]
    assert series.model_sales.tolist() == [100.0]


@pytest.mark.parametrize(
    ("last", "complete"),
    [
        (datetime(2005, 5, 31), True),
        (datetime(2005, 5, 30), False),
        (datetime(2004, 2, 29), True),
        (datetime(2003, 2, 28, 12), True),
    ],
)
def test_month_is_complete(last: datetime, complete: bool) -> None:
    assert month_is_complete(last) is complete


def test_months_outside_the_window_and_missing_columns_are_errors() -> None:
    with pytest.raises(ValueError, match="2004-01"):
        build_monthly_series(totals(["2004-01"], [1.0]), datetime(2003, 1, 1), datetime(2003, 12, 31))
    with pytest.raises(KeyError, match="sales"):
        build_monthly_series(
            pl.DataFrame({"month": [datetime(2003, 1, 1)]}), datetime(2003, 1, 1), datetime(2003, 1, 31)
        )


@pytest.mark.parametrize(
    ("key", "segment", "stem"),
    [
        ("ALL", Segment(), "sales_ts_risk_ALL_ALL"),
        ("Classic Cars", Segment("Classic Cars"), "sales_ts_risk_Classic_Cars_ALL"),
        ("Classic Cars|USA", Segment("Classic Cars", "USA"), "sales_ts_risk_Classic_Cars_USA"),
        (
            "Trucks and Buses|Côte d'Ivoire",
            Segment("Trucks and Buses", "Côte d'Ivoire"),
            "sales_ts_risk_Trucks_and_Buses_C_te_d_Ivoire",
        ),
    ],
)
def test_segment_keys_round_trip_and_file_names_are_safe(key: str, segment: Segment, stem: str) -> None:
    assert Segment.from_key(key) == segment
    assert segment.key == key
    assert segment.file_stem == stem


@pytest.mark.parametrize("key", ["", "|USA", "Classic Cars|"])
def test_malformed_segment_keys_are_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="segment key"):
        Segment.from_key(key)


def test_real_shape_series_from_the_synthetic_rows(order_lines: pd.DataFrame) -> None:
    rows = order_lines[order_lines["COUNTRY"] == "France"]
    monthly = rows.groupby(rows["ORDERDATE"].dt.to_period("M").dt.to_timestamp())["SALES"].sum()
    series = build_monthly_series(
        pl.DataFrame({"month": monthly.index.to_pydatetime(), "sales": monthly.to_numpy()}),
        order_lines["ORDERDATE"].min().to_pydatetime(),
        order_lines["ORDERDATE"].max().to_pydatetime(),
    )
    assert len(series.sales) == 29
    assert series.zero_months == ["2004-04"]
    assert series.sales.sum() == pytest.approx(rows["SALES"].sum())
