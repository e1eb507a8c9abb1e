"""The typed ML reports: what a real (small) training writes validates as `MetricsReport` / `ShapReport` and
dumps back to the same JSON, the asset metadata carries the report's numbers, and a file of the wrong shape
(each required field missing, an unknown field, a wrong type, not JSON) is refused with the file named."""

import json
import math

import pytest

from sales_assets.io import write_json_atomic
from sales_assets.ml.report_model import METRICS_FILE, SHAP_FILE, MetricsReport, ShapReport
from sales_serving.contract.formatting import count, money, round_share

REPORTS = [(MetricsReport, "metrics_dir", METRICS_FILE, "trained_models"),
           (ShapReport, "explainability_dir", SHAP_FILE, "shap_importance")]  # fmt: skip


def _written(ml_run, folder: str, name: str) -> dict:
    return json.loads((getattr(ml_run.settings, folder) / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("model", "folder", "name", "asset"), REPORTS)
def test_the_files_of_a_real_training_validate_and_keep_their_shape(ml_run, model, folder, name, asset):
    written = _written(ml_run, folder, name)
    report = model.read(getattr(ml_run.settings, folder) / name)
    assert report.model_dump(mode="json") == written


def test_the_asset_metadata_shows_the_numbers_of_the_metrics_file(ml_run):
    report = MetricsReport.read(ml_run.settings.metrics_dir / METRICS_FILE)
    metadata = ml_run.result.asset_materializations_for_node("trained_models")[0].metadata
    shown = {key: value.value for key, value in metadata.items()}
    assert shown["champion"] == report.champion.model
    # Written by the one formatter: USD to the cent, R² to three decimals, counts with separators.
    assert shown["champion_cv_rmse"] == money(report.champion.cv.rmse_mean)
    assert shown["champion_holdout_r2"] == round_share(report.champion.holdout.r2)
    assert shown["rows_train"] == count(report.protocol.rows_train)
    assert shown["mlflow_model_version"] == report.lineage.mlflow_model_version
    assert shown["promoted"] is report.promotion.promote
    shap = ShapReport.read(ml_run.settings.explainability_dir / SHAP_FILE)
    shap_metadata = ml_run.result.asset_materializations_for_node("shap_importance")[0].metadata
    assert shap_metadata["top_feature"].value == shap.importance[0].feature
    assert [row.rank for row in shap.importance] == list(range(1, len(shap.importance) + 1))


def _required_paths(payload: dict, model_fields: dict) -> list[str]:
    return [name for name, field in model_fields.items() if field.is_required() and name in payload]


@pytest.mark.parametrize(("model", "folder", "name", "asset"), REPORTS)
def test_a_file_missing_any_required_field_is_refused_by_name(ml_run, tmp_path, model, folder, name, asset):
    written = _written(ml_run, folder, name)
    required = _required_paths(written, model.model_fields)
    assert len(required) >= 6
    for field in required:
        broken = {key: value for key, value in written.items() if key != field}
        path = write_json_atomic(tmp_path / name, broken)
        with pytest.raises(ValueError) as refused:
            model.read(path)
        message = str(refused.value)
        assert str(path) in message and f"{field}: Field required" in message
        assert f"not a {model.__name__}" in message and f"rematerialise {asset}" in message


def test_nested_gaps_unknown_fields_wrong_types_and_bad_json_are_refused(ml_run, tmp_path):
    written = _written(ml_run, "metrics_dir", METRICS_FILE)
    path = tmp_path / METRICS_FILE
    cases = {
        "champion.holdout.rmse: Field required": lambda d: d["champion"]["holdout"].pop("rmse"),
        "models.1.cv.r2_mean: Field required": lambda d: d["models"][1]["cv"].pop("r2_mean"),
        "lineage.surprise: Extra inputs are not permitted": lambda d: d["lineage"].update(surprise=1),
        "promotion.promote: Input should be a valid boolean": lambda d: d["promotion"].update(
            promote="maybe"
        ),
        "models: List should have at least 1 item": lambda d: d.update(models=[]),
    }
    for problem, damage in cases.items():
        broken = json.loads(json.dumps(written))
        damage(broken)
        write_json_atomic(path, broken)
        with pytest.raises(ValueError, match=f"^{path}: not a MetricsReport .*{problem}"):
            MetricsReport.read(path)
    path.write_text('{"generated_at": ')
    with pytest.raises(ValueError, match=f"^{path}: .*Invalid JSON"):
        MetricsReport.read(path)
    with pytest.raises(OSError):
        MetricsReport.read(tmp_path / "absent.json")


def test_a_non_finite_parity_difference_survives_the_round_trip(ml_run, tmp_path):
    """A parity check with a non-finite prediction reports max_abs_diff = inf: written, it must read back
    as inf, not as null (which would make the file unreadable)."""
    report = MetricsReport.read(ml_run.settings.metrics_dir / METRICS_FILE)
    parity = report.champion.onnx_parity.model_copy(update={"max_abs_diff": math.inf, "passed": False})
    changed = report.model_copy(
        update={"champion": report.champion.model_copy(update={"onnx_parity": parity})}
    )
    path = write_json_atomic(tmp_path / METRICS_FILE, changed.model_dump(mode="json"))
    assert MetricsReport.read(path).champion.onnx_parity.max_abs_diff == math.inf
