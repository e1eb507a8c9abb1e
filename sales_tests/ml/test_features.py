import numpy as np
import pandas as pd
import polars as pl
import pytest

from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.settings import MLSettings


def test_feature_matrix_has_the_settings_columns_in_order_with_derived_values(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(pl.from_pandas(frame), spec)

    assert list(features.columns) == [*MLSettings().numeric_features, *MLSettings().categorical_features]
    assert "DEALSIZE" not in features.columns and not spec.leaky
    assert np.allclose(features["PRICE_TO_MSRP_RATIO"], frame["PRICEEACH"] / frame["MSRP"])
    assert np.allclose(features["LINE_TOTAL_APPROX"], frame["QUANTITYORDERED"] * frame["PRICEEACH"])
    assert (features["YEAR"] == frame["YEAR_ID"]).all() and (features["QUARTER"] == frame["QTR_ID"]).all()
    assert all(features[name].dtype == "float64" for name in spec.numeric)
    assert np.array_equal(target, frame["SALES"].to_numpy())


def test_season_follows_the_contract():
    spec = feature_spec(MLSettings())
    months = pd.DataFrame({"MONTH_ID": [12, 1, 3, 5, 6, 8, 9, 11]})
    raw = pd.concat(
        [months, pd.DataFrame({c: [1] * 8 for c in spec.request_fields if c != "MONTH_ID"})], axis=1
    )
    features, _ = build_feature_matrix(
        raw.assign(PRODUCTLINE="Ships", COUNTRY="USA"), spec, require_target=False
    )
    expected = ["Winter", "Winter", "Spring", "Spring", "Summer", "Summer", "Autumn", "Autumn"]
    assert features["SEASON"].tolist() == expected


def test_request_fields_and_derived_ops_match_the_bundle_contract():
    spec = feature_spec(MLSettings())
    assert spec.request_fields == [
        "QUANTITYORDERED", "PRICEEACH", "ORDERLINENUMBER", "MSRP", "QTR_ID", "MONTH_ID", "YEAR_ID",
        "PRODUCTLINE", "COUNTRY",
    ]  # fmt: skip
    assert {"name": "PRICE_TO_MSRP_RATIO", "op": "divide", "inputs": ["PRICEEACH", "MSRP"]} in spec.derived
    assert {"name": "SEASON", "op": "season", "inputs": ["MONTH_ID"]} in spec.derived


def test_a_settings_column_missing_from_the_data_is_named(frame):
    with pytest.raises(KeyError, match="MSRP"):
        build_feature_matrix(frame.drop(columns=["MSRP"]), feature_spec(MLSettings()))
    settings = MLSettings(numeric_features=["QUANTITYORDERED", "DISCOUNT"])
    with pytest.raises(KeyError, match="DISCOUNT"):
        build_feature_matrix(frame, feature_spec(settings))


def test_non_positive_msrp_cannot_be_divided_by(frame):
    frame.loc[3, "MSRP"] = 0
    with pytest.raises(ValueError, match="'MSRP' must be > 0"):
        build_feature_matrix(frame, feature_spec(MLSettings()))


def test_dealsize_switch_adds_the_leaky_column(frame):
    spec = feature_spec(MLSettings(include_dealsize=True))
    features, _ = build_feature_matrix(frame, spec)
    assert spec.leaky and features.columns[-1] == "DEALSIZE"
