import duckdb
import numpy as np
import pytest

from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.ml.leakage import leakage_report, leaky_features
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
    assert leaky_features(leakage_report(features, target, threshold=0.95)) == []


@pytest.mark.real_data
def test_dealsize_is_the_only_leak_in_the_real_export(real_warehouse_data_dir):
    with duckdb.connect(str(Settings(data_dir=real_warehouse_data_dir).duckdb_path), read_only=True) as conn:
        real = conn.sql("SELECT * FROM sales").df()
    features, target = build_feature_matrix(real, feature_spec(MLSettings(include_dealsize=True)))
    assert leaky_features(leakage_report(features, target, threshold=MLSettings().leakage_r2_threshold)) == [
        "DEALSIZE"
    ]
