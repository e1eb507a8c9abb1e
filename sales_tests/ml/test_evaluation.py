import numpy as np
import polars as pl
import pytest

from sales_assets.ml import training
from sales_assets.ml.catalogue import build_pipeline
from sales_assets.ml.evaluation import (
    choose_champion,
    cross_validate,
    fit_and_score,
    fold_splits,
    out_of_fold_predictions,
    seed_protocol_report,
)
from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.ml.training import train_models
from sales_assets.settings import MLSettings, Settings
from sales_serving.contract.estimators import CappedPriceRegressor


def test_training_reports_cv_mean_and_sd_per_model_and_scores_the_champion_once(frame, fast_settings):
    outcome = train_models(frame, fast_settings)

    assert outcome.board["model"].to_list() == sorted(
        fast_settings.ml.models,
        key=lambda m: outcome.board.filter(outcome.board["model"] == m)["rmse_mean"][0],
    )
    assert set(outcome.board.columns) >= {"rmse_mean", "rmse_std", "mae_mean", "mae_std", "r2_mean", "r2_std"}
    assert all(len(result.fold_scores) == 2 for result in outcome.results)
    assert len(outcome.split.test_index) == 80 and len(outcome.split.train_index) == 320
    # The exact product below the cap makes the capped-price model the clear winner on this data.
    assert outcome.champion == "capped_price_residual"
    assert (
        outcome.champion_holdout["rmse"]
        < outcome.board.filter(outcome.board["model"] == "linear_regression")["rmse_mean"][0]
    )
    assert outcome.champion_parity.passed and not outcome.ineligible


def test_champion_is_the_best_eligible_model():
    board = pl.DataFrame({"model": ["a", "b", "c"], "rmse_mean": [1.0, 2.0, 3.0]})
    assert choose_champion(board, lambda model: model != "a") == "b"
    with pytest.raises(RuntimeError, match="no eligible champion"):
        choose_champion(board, lambda model: False)


def test_a_best_model_that_cannot_export_gives_way_to_the_next_eligible_one(
    frame, fast_settings, monkeypatch
):
    fast_settings.ml.models = ["linear_regression", "capped_price_residual"]
    real_export = training.export_onnx

    def export_without_capped_price(pipeline, spec):
        if isinstance(pipeline.named_steps["model"], CappedPriceRegressor):
            raise NotImplementedError("no converter for CappedPriceRegressor")
        return real_export(pipeline, spec)

    monkeypatch.setattr(training, "export_onnx", export_without_capped_price)
    outcome = train_models(frame, fast_settings)

    assert outcome.board["model"].to_list() == ["capped_price_residual", "linear_regression"]
    assert outcome.champion == "linear_regression" and outcome.champion_parity.passed
    assert outcome.ineligible == {
        "capped_price_residual": "ONNX export failed: NotImplementedError: no converter for CappedPriceRegressor"
    }


def test_training_fails_naming_why_no_model_is_eligible(frame, fast_settings):
    fast_settings.ml.models = ["linear_regression"]
    # float32 ONNX inputs cannot match the float64 pipeline this closely.
    fast_settings.ml.onnx_tolerance = 1e-12
    with pytest.raises(RuntimeError, match=r"no eligible champion.*linear_regression.*ONNX parity failed"):
        train_models(frame, fast_settings)


def test_seed_protocol_is_labelled_leaky_and_never_a_champion(frame):
    report = seed_protocol_report(
        frame, feature_spec(MLSettings()), ["QUANTITYORDERED", "PRICEEACH", "SALES", "MSRP"]
    )
    assert report["leaky"] and not report["eligible_as_champion"]
    assert "DEALSIZE" in report["features"]
    assert report["rows_after_filter"] <= report["rows_before_filter"] == len(frame)
    assert report["holdout"]["r2"] > 0.5


def test_folds_in_parallel_score_exactly_as_in_sequence(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("gradient_boosting_200", spec, Settings())

    sequential = cross_validate(pipeline, features, target, 3, 2, 42, n_jobs=1)
    parallel = cross_validate(pipeline, features, target, 3, 2, 42, n_jobs=2)

    assert len(sequential) == 6 and sequential == parallel


def test_out_of_fold_predictions_come_from_the_first_partition_only(frame):
    spec = feature_spec(MLSettings())
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("linear_regression", spec, Settings())
    splits = fold_splits(len(features), 4, 2, 42)
    folds = [fit_and_score(pipeline, features, target, train, test) for train, test in splits]

    predictions = out_of_fold_predictions(folds[:4], len(features))

    assert np.isfinite(predictions).all()
    for fold in folds[:4]:  # each row's prediction is from the one fold model that did not see it
        assert np.array_equal(predictions[fold.test_index], fold.predictions)


def test_the_random_forest_search_is_nested_inside_each_outer_fold(frame, fast_settings, monkeypatch):
    """random_forest_tuned's search is fit once per outer fold on that fold's training rows only (its inner
    CV splits those), then once on all training rows for the shipped model: every reported CV score comes
    from rows that chose neither its hyperparameters nor its trees."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (enables the import below)
    from sklearn.model_selection import HalvingRandomSearchCV

    searched: list[np.ndarray] = []
    fit = HalvingRandomSearchCV.fit

    def spy(self, X, y=None, **params):
        searched.append(np.asarray(X, dtype=float).copy())
        return fit(self, X, y, **params)

    monkeypatch.setattr(HalvingRandomSearchCV, "fit", spy)
    fast_settings.ml.models = ["random_forest_tuned", "capped_price_residual"]
    fast_settings.ml.n_jobs = 1  # in this process, so the spy sees every fit, in submission order
    outcome = train_models(frame, fast_settings)

    train_x, _ = outcome.part("train")
    # The preprocessor passes the numeric features through first, so they identify the rows searched.
    numeric = train_x[list(outcome.spec.numeric)].to_numpy(dtype=float)
    splits = fold_splits(len(train_x), fast_settings.ml.cv_folds, fast_settings.ml.cv_repeats, 42)
    assert len(searched) == len(splits) + 1
    for rows, (train, test) in zip(searched, splits, strict=False):
        assert np.array_equal(rows[:, : numeric.shape[1]], numeric[train])
        assert len(rows) == len(train) and not set(train) & set(test)
    assert np.array_equal(searched[-1][:, : numeric.shape[1]], numeric)
    assert not hasattr(outcome.pipelines["random_forest_tuned"].named_steps["model"], "best_estimator_")


def test_spilled_final_pipelines_score_as_in_memory_and_only_the_champion_stays_loaded(
    frame, fast_settings, tmp_path
):
    spill = tmp_path / "spill"
    spill.mkdir()
    fast_settings.ml.n_jobs = 2  # the workers write the files; the parent only gets their paths
    in_memory = train_models(frame, fast_settings)
    spilled = train_models(frame, fast_settings, spill_dir=spill)

    assert isinstance(spilled.pipelines, training.SpilledPipelines)
    assert sorted(path.name for path in spill.iterdir()) == sorted(
        f"{name}.joblib" for name in fast_settings.ml.models
    )
    assert all(isinstance(path, type(spill)) for path in spilled.pipelines.paths.values())
    assert spilled.board.equals(in_memory.board.with_columns(spilled.board["fit_seconds"]))
    assert spilled.champion == in_memory.champion
    assert spilled.champion_holdout == in_memory.champion_holdout
    test_x, _ = spilled.part("test")
    for name in fast_settings.ml.models:
        np.testing.assert_array_equal(
            spilled.pipelines[name].predict(test_x), in_memory.pipelines[name].predict(test_x)
        )
    # The champion is held; any other name is read from its file on each access.
    assert spilled.champion_pipeline is spilled.champion_pipeline
    other = next(name for name in fast_settings.ml.models if name != spilled.champion)
    assert spilled.pipelines[other] is not spilled.pipelines[other]
