"""The bundle contract (sales_serving.contract.bundle): whole bundles, CURRENT by rename, metadata validated
before anything is written, one `read_current` behaviour, and the interval and promotion fields."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline

from sales_serving.contract import bundle
from sales_serving.contract.bundle import (
    BUNDLE_FILES,
    BundleError,
    BundleMetadata,
    bundle_version,
    point_current,
    read_current,
    read_metadata,
    write_bundle,
)
from sales_tests.serving.bundle_factory import write_bundle as write_test_bundle

FIRST = "20260101T000000Z-aaaaaaaa"
SECOND = "20260102T000000Z-bbbbbbbb"


def _pipeline() -> Pipeline:
    return Pipeline([("model", DummyRegressor().fit([[0.0]], [1.0]))])


@pytest.fixture
def valid_metadata(tmp_path: Path, trained: dict) -> dict:
    """metadata.json of a real test bundle, as a dict to vary."""
    written = write_test_bundle(tmp_path / "source", FIRST, *trained["20261127T091500Z-aaaaaaaa"])
    return json.loads((written / "metadata.json").read_text())


def test_bundle_is_written_whole_and_current_points_at_it(tmp_path: Path, valid_metadata: dict) -> None:
    models = tmp_path / "models"
    first = write_bundle(models, FIRST, _pipeline(), b"onnx-1", valid_metadata)
    second = write_bundle(models, SECOND, _pipeline(), b"onnx-2", valid_metadata | {"version": SECOND})

    assert sorted(p.name for p in first.iterdir()) == sorted(BUNDLE_FILES)
    assert read_current(models) == SECOND
    assert read_metadata(second).version == SECOND
    assert joblib.load(second / "pipeline.joblib").predict([[5.0]])[0] == 1.0
    assert not list(models.glob(".*partial")) and not list(models.glob("CURRENT.tmp-*"))


def test_a_candidate_can_be_written_without_moving_current(tmp_path: Path, valid_metadata: dict) -> None:
    models = tmp_path / "models"
    write_bundle(models, FIRST, _pipeline(), b"onnx-1", valid_metadata)
    write_bundle(models, SECOND, _pipeline(), None, valid_metadata | {"version": SECOND}, make_current=False)
    assert read_current(models) == FIRST
    assert not (models / SECOND / "model.onnx").exists()
    point_current(models, SECOND)
    assert read_current(models) == SECOND


def test_a_crash_mid_write_leaves_current_on_the_old_bundle(
    tmp_path: Path, valid_metadata: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    write_bundle(models, FIRST, _pipeline(), b"onnx-1", valid_metadata)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundle.Path, "write_text", crash)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(models, SECOND, _pipeline(), b"onnx-2", valid_metadata | {"version": SECOND})
    monkeypatch.undo()

    assert read_current(models) == FIRST
    assert not (models / SECOND).exists() and not list(models.glob(".*partial"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"leaky": None}, r"leaky: Field required"),
        ({"version": SECOND}, r"says version '20260102T000000Z-bbbbbbbb', written as"),
        (
            {"intervals": {"method": "x", "levels": {"0.8": {"lower_relative": 0.1, "upper_relative": 0.1}}}},
            r"intervals.levels.0.8.lower_relative: Input should be less than or equal to 0",
        ),
        (
            {"intervals": {"method": "x", "levels": {"80": {"lower_relative": -0.1, "upper_relative": 0.1}}}},
            r"interval levels must lie in \(0, 1\), got \[80.0\]",
        ),
        ({"promotion": {"promoted": True, "policy": "always"}}, r"promotion.policy: Input should be"),
    ],
    ids=["missing-field", "wrong-version", "inverted-band", "level-as-percent", "unknown-policy"],
)
def test_metadata_off_contract_is_refused_before_anything_is_written(
    tmp_path: Path, valid_metadata: dict, change: dict, expected: str
) -> None:
    metadata = {key: value for key, value in (valid_metadata | change).items() if value is not None}
    models = tmp_path / "models"
    with pytest.raises(BundleError, match=expected):
        write_bundle(models, FIRST, _pipeline(), b"onnx", metadata)
    assert not models.exists() or not any(models.iterdir())


def test_read_current_is_none_before_the_first_bundle_and_refuses_a_bad_pointer(tmp_path: Path) -> None:
    assert read_current(tmp_path) is None
    for bad in ("../elsewhere", "", ".hidden", "a\nb"):
        (tmp_path / "CURRENT").write_text(bad + "\n")
        with pytest.raises(BundleError, match="expected one bundle directory name"):
            read_current(tmp_path)
    with pytest.raises(BundleError, match="no such bundle"):
        point_current(tmp_path, FIRST)


def test_interval_and_promotion_fields_round_trip(valid_metadata: dict) -> None:
    metadata = BundleMetadata.model_validate(
        valid_metadata
        | {
            "promotion": {"promoted": False, "policy": "newest_candidate", "reason": "lost to v1"},
            "intervals": {
                "method": "split-conformal",
                "price_cap": 100.0,
                "levels": {"0.8": {"lower_relative": -0.1, "upper_relative": 0.12}},
                "coverage_holdout": {"0.8": 0.81},
            },
            "lineage": valid_metadata["lineage"] | {"mlflow_model_run_id": "child"},
        }
    )
    assert metadata.intervals.levels[0.8].upper_relative == 0.12
    assert metadata.promotion.policy == "newest_candidate"
    assert metadata.lineage.mlflow_model_run_id == "child"
    again = BundleMetadata.model_validate(json.loads(json.dumps(metadata.model_dump(mode="json"))))
    assert again == metadata


def test_bundle_version_sorts_by_time() -> None:
    from datetime import UTC, datetime

    early = bundle_version("abcdef123456", datetime(2026, 1, 1, tzinfo=UTC))
    late = bundle_version("00000000zzzz", datetime(2026, 1, 2, tzinfo=UTC))
    assert early == "20260101T000000Z-abcdef12" and early < late
