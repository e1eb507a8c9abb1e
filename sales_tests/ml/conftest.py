"""Fixtures of the ML tests: a small sales-shaped frame with the data's price cap, and fast settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sales_assets.settings import Settings

PRODUCT_LINES = ["Classic Cars", "Motorcycles", "Planes", "Ships", "Trains"]
COUNTRIES = ["USA", "France", "Spain", "Australia"]


def sales_frame(rows: int = 400, seed: int = 7) -> pd.DataFrame:
    """Like the export: SALES = quantity x unit price, PRICEEACH capped at 100, DEALSIZE cut from SALES."""
    rng = np.random.default_rng(seed)
    msrp = rng.integers(40, 210, rows).astype(float)
    unit_price = np.round(msrp * rng.uniform(0.8, 1.2, rows), 2)
    quantity = rng.integers(6, 70, rows)
    sales = np.round(quantity * unit_price, 2)
    month = rng.integers(1, 13, rows)
    return pd.DataFrame(
        {
            "ORDERNUMBER": np.arange(10100, 10100 + rows),
            "QUANTITYORDERED": quantity,
            "PRICEEACH": np.minimum(unit_price, 100.0),
            "ORDERLINENUMBER": rng.integers(1, 18, rows),
            "SALES": sales,
            "QTR_ID": (month - 1) // 3 + 1,
            "MONTH_ID": month,
            "YEAR_ID": rng.choice([2003, 2004, 2005], rows),
            "PRODUCTLINE": rng.choice(PRODUCT_LINES, rows),
            "MSRP": msrp,
            "PRODUCTCODE": [f"S{int(value)}" for value in msrp],
            "COUNTRY": rng.choice(COUNTRIES, rows),
            "DEALSIZE": np.where(sales < 3000, "Small", np.where(sales < 7000, "Medium", "Large")),
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return sales_frame()


@pytest.fixture
def fast_settings(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path)
    settings.ml.cv_folds = 2
    settings.ml.cv_repeats = 1
    settings.ml.models = ["linear_regression", "gradient_boosting_200", "capped_price_residual"]
    settings.ml.tuning_iterations = 2
    return settings
