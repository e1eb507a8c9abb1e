import duckdb
import numpy as np
import pytest

from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.ml.leakage import leakage_partners, leakage_report, leaky_features
from sales_assets.settings import MLSettings, Settings


def test_guard_flags_target_bins_and_near_copies_but_not_honest_features(frame):
    features, target = build_feature_matrix(frame, feature_spec(MLSettings(include_dealsize=True)))
    rng = np.random.default_rng(0)
    features["SALES_ECHO"] = target * 1.02 + rng.normal(0, 5, len(target))

    report = leakage_report(features, target, threshold=0.95)

    assert set(leaky_features(report)) == {"DEALSIZE", "SALES_ECHO"}
    dealsize = report.filter(report["feature"] == "DEALSIZE").row(0, named=True)
    assert dealsize["measure"] == "feature_from_target_kappa" and dealsize["score"] > 0.95
    assert report.height == features.shape[1]
    assert report["score"].is_sorted(descending=True)


def test_default_features_pass_the_guard(frame):
    features, target = build_feature_matrix(frame, feature_spec(MLSettings()))
    spec = feature_spec(MLSettings())
    assert (
        leaky_features(leakage_report(features, target, 0.95, partners=leakage_partners(spec.numeric))) == []
    )


@pytest.mark.parametrize(
    ("rebuilt", "partner"),
    [
        (lambda sales, quantity, price: np.round(sales / quantity), "QUANTITYORDERED"),
        (lambda sales, quantity, price: sales / price, "PRICEEACH"),
        (lambda sales, quantity, price: sales * quantity, "QUANTITYORDERED"),
        (lambda sales, quantity, price: quantity / sales, "QUANTITYORDERED"),
    ],
    ids=["unit-price-from-sales", "sales-over-price", "sales-times-quantity", "quantity-over-sales"],
)
def test_guard_flags_a_column_that_rebuilds_the_target_with_a_partner(frame, rebuilt, partner):
    """Alone such a column explains little of SALES; with QUANTITYORDERED or PRICEEACH it gives SALES back."""
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    quantity, price = features["QUANTITYORDERED"].to_numpy(), features["PRICEEACH"].to_numpy()
    features["CANDIDATE"] = rebuilt(target, quantity, price)

    report = leakage_report(features, target, 0.95, partners=leakage_partners(spec.numeric))

    assert leaky_features(report) == ["CANDIDATE"]
    row = report.filter(report["feature"] == "CANDIDATE").row(0, named=True)
    assert partner in row["measure"] and row["score"] >= 0.95


def test_the_unit_price_rebuilt_from_sales_passes_alone_and_is_caught_as_a_pair(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    features["UNIT_PRICE"] = np.round(target / features["QUANTITYORDERED"])

    alone = leakage_report(features, target, 0.95)
    paired = leakage_report(features, target, 0.95, partners=leakage_partners(spec.numeric))

    assert leaky_features(alone) == [] and leaky_features(paired) == ["UNIT_PRICE"]


def test_partners_are_checked_only_when_they_are_model_inputs():
    assert leakage_partners(["PRICEEACH", "MSRP", "QUANTITYORDERED"]) == ("QUANTITYORDERED", "PRICEEACH")
    assert leakage_partners(["MSRP"]) == ()


@pytest.mark.real_data
def test_dealsize_is_the_only_leak_in_the_real_export(real_warehouse_data_dir):
    with duckdb.connect(str(Settings(data_dir=real_warehouse_data_dir).duckdb_path), read_only=True) as conn:
        real = conn.sql("SELECT * FROM sales").df()
    features, target = build_feature_matrix(real, feature_spec(MLSettings(include_dealsize=True)))
    threshold = MLSettings().leakage_r2_threshold
    partners = leakage_partners(list(features.columns))
    assert leaky_features(leakage_report(features, target, threshold, partners=partners)) == ["DEALSIZE"]
