"""Fixtures of the timeseries tests: a tiny order-line frame with known monthly totals, and a DuckDB
warehouse holding it under a temp SALES_DATA_DIR (the real file's warehouse comes from sales_tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from sales_assets.settings import SARIMA_SPECS, Settings

MONTHS = pd.date_range("2003-01-01", "2005-05-01", freq="MS")  # 29 months, as in the real file
SARIMA_CANDIDATES = SARIMA_SPECS  # off by default; the selection tests try all five


def seasonal_series(seed: int, months: int = 72) -> np.ndarray:
    """A strong yearly cycle plus AR(1) noise: the AR part is what a SARIMA can use and seasonal naive cannot."""
    rng = np.random.default_rng(seed)
    noise = np.zeros(months)
    for t in range(1, months):
        noise[t] = 0.8 * noise[t - 1] + rng.normal(0, 60)
    return 1000 + 400 * np.sin(2 * np.pi * np.arange(months) / 12) + noise


def white_noise(seed: int, months: int = 72) -> np.ndarray:
    return 1000 + np.random.default_rng(seed).normal(0, 100, months)


def synthetic_order_lines(seed: int = 3) -> pd.DataFrame:
    """Two order lines per segment-month with a November peak; 'Motorcycles|Japan' orders in 3 months
    only, and 'Classic Cars|France' skips April 2004. The last order is on 2005-05-31, a complete month."""
    rng = np.random.default_rng(seed)
    rows = []
    for product_line, country, months in [
        ("Classic Cars", "USA", MONTHS),
        ("Classic Cars", "France", MONTHS.drop(pd.Timestamp("2004-04-01"))),
        ("Motorcycles", "USA", MONTHS),
        ("Motorcycles", "Japan", MONTHS[[2, 10, 20]]),
    ]:
        for month in months:
            level = 10_000 * (3 if month.month == 11 else 1)
            for day in (6, 20):
                rows.append(
                    (month + pd.Timedelta(days=day - 1), level * rng.uniform(0.8, 1.2), product_line, country)
                )
    frame = pd.DataFrame(rows, columns=["ORDERDATE", "SALES", "PRODUCTLINE", "COUNTRY"])
    frame.loc[len(frame)] = (pd.Timestamp("2005-05-31"), 1_000.0, "Classic Cars", "USA")
    return frame


def write_warehouse(frame: pd.DataFrame, data_dir: Path) -> Settings:
    settings = Settings(data_dir=data_dir)
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as connection:
        connection.register("frame", frame)
        connection.sql("CREATE TABLE sales AS SELECT * FROM frame")
    return settings


# Two small SARIMA candidates: the Dagster wiring tests need a report, not the full candidate search.
QUICK_CANDIDATES = '[{"order": [1, 0, 0], "seasonal_order": [0, 1, 0, 12]}, {"order": [0, 0, 0], "seasonal_order": [1, 1, 0, 12]}]'


@pytest.fixture
def quick_candidates(monkeypatch: pytest.MonkeyPatch) -> str:
    """Settings read from the environment in this test get the two quick SARIMA candidates."""
    monkeypatch.setenv("SALES_TIMESERIES__SARIMA_CANDIDATES", QUICK_CANDIDATES)
    return QUICK_CANDIDATES


@pytest.fixture
def order_lines() -> pd.DataFrame:
    return synthetic_order_lines()


@pytest.fixture
def warehouse(tmp_path: Path, order_lines: pd.DataFrame) -> Settings:
    """Settings rooted at a temp data dir whose DuckDB file holds the synthetic `sales` table."""
    return write_warehouse(order_lines, tmp_path / "data")
