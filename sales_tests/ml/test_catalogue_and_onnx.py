import numpy as np
import pytest

from sales_assets.ml.catalogue import MODEL_CATALOGUE, build_pipeline, finalize_pipeline
from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.ml.onnx_export import (
    check_parity,
    export_onnx,
    onnx_input_types,
    onnx_predict,
    onnx_session,
)
from sales_assets.settings import MLSettings, Settings
from sales_serving.contract.estimators import CappedPriceRegressor


def test_catalogue_covers_the_default_model_list():
    assert set(MLSettings().models) <= set(MODEL_CATALOGUE)


def test_unknown_model_name_is_named(frame):
    with pytest.raises(KeyError, match="svm"):
        build_pipeline("svm", feature_spec(MLSettings()), Settings())


def test_capped_price_regressor_is_exact_below_the_cap_and_estimates_above(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("capped_price_residual", spec, Settings()).fit(features, target)
    predicted = pipeline.predict(features)

    below = frame["PRICEEACH"].to_numpy() < 100
    assert below.any() and (~below).any()
    assert np.allclose(predicted[below], target[below])
    quantity = frame["QUANTITYORDERED"].to_numpy()[~below]
    unit_price = predicted[~below] / quantity
    assert unit_price.min() > 90 and unit_price.max() < 260


def test_capped_price_regressor_needs_capped_rows():
    X = np.array([[10.0, 50.0], [5.0, 60.0]])
    with pytest.raises(ValueError, match="no training row has a price at the cap"):
        CappedPriceRegressor().fit(X, X[:, 0] * X[:, 1])


@pytest.mark.parametrize(
    "name", ["linear_regression", "capped_price_residual", "lightgbm", "random_forest_tuned"]
)
def test_onnx_export_matches_the_joblib_pipeline_on_every_row(frame, name):
    settings = Settings()
    settings.ml.tuning_iterations = 2
    spec = feature_spec(settings.ml)
    features, target = build_feature_matrix(frame, spec)
    pipeline = finalize_pipeline(build_pipeline(name, spec, settings).fit(features[:300], target[:300]))
    onnx_bytes = export_onnx(pipeline, spec)

    parity = check_parity(pipeline, onnx_bytes, frame[300:], spec, tolerance=0.01)

    assert parity.passed and parity.rows_checked == 100 and parity.rows_outside == 0
    assert parity.max_abs_diff <= 0.01


def test_the_graph_takes_request_fields_and_derives_every_feature_inside(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("linear_regression", spec, Settings()).fit(features, target)
    session = onnx_session(export_onnx(pipeline, spec))

    inputs = {node.name: node.type for node in session.get_inputs()}
    assert list(inputs) == spec.request_fields == [item["name"] for item in onnx_input_types(spec)]
    assert inputs["PRODUCTLINE"] == "tensor(string)" and inputs["MONTH_ID"] == "tensor(double)"
    assert not {"YEAR", "MONTH", "QUARTER", "SEASON", "PRICE_TO_MSRP_RATIO", "LINE_TOTAL_APPROX"} & set(
        inputs
    )
    # Each derived feature matters: changing only its source field changes the answer as Python's does.
    for field, value in {"MONTH_ID": 7, "MSRP": 150.0, "QUANTITYORDERED": 40, "QTR_ID": 2}.items():
        changed = frame.head(5).assign(**{field: value})
        expected = pipeline.predict(build_feature_matrix(changed, spec, require_target=False)[0])
        assert np.allclose(onnx_predict(export_onnx(pipeline, spec), changed, spec), expected, atol=0.01)


def test_onnx_answers_for_an_unseen_category(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("linear_regression", spec, Settings()).fit(features, target)
    unseen = frame.head(3).assign(COUNTRY="Atlantis")
    assert np.allclose(
        onnx_predict(export_onnx(pipeline, spec), unseen, spec),
        pipeline.predict(features.head(3).assign(COUNTRY="Atlantis")),
        atol=0.01,
    )


@pytest.mark.parametrize("nan_side", ["joblib", "both"])
def test_parity_fails_on_non_finite_predictions(frame, nan_side):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("linear_regression", spec, Settings()).fit(features, target)
    model = pipeline.named_steps["model"]
    if nan_side == "both":
        model.intercept_ = np.nan
        onnx_bytes = export_onnx(pipeline, spec)
    else:
        onnx_bytes = export_onnx(pipeline, spec)
        model.intercept_ = np.nan
    assert np.isfinite(onnx_predict(onnx_bytes, frame, spec)).any() == (nan_side == "joblib")

    parity = check_parity(pipeline, onnx_bytes, frame, spec, tolerance=0.01)

    assert not parity.passed
    assert parity.rows_outside == parity.rows_non_finite == parity.rows_checked == len(features)
    assert parity.max_abs_diff == np.inf
