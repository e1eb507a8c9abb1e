import json

import joblib
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline

from sales_assets.ml import bundle
from sales_assets.ml.bundle import BUNDLE_FILES, bundle_version, read_current, write_bundle


def _pipeline():
    return Pipeline([("model", DummyRegressor().fit([[0.0]], [1.0]))])


def test_bundle_is_written_whole_and_current_points_at_it(tmp_path):
    first = write_bundle(tmp_path, "20260101T000000Z-aaaaaaaa", _pipeline(), b"onnx-1", {"version": "1"})
    second = write_bundle(tmp_path, "20260102T000000Z-bbbbbbbb", _pipeline(), b"onnx-2", {"version": "2"})

    assert sorted(p.name for p in first.iterdir()) == sorted(BUNDLE_FILES)
    assert read_current(tmp_path) == second.name
    assert json.loads((second / "metadata.json").read_text())["version"] == "2"
    assert joblib.load(second / "pipeline.joblib").predict([[5.0]])[0] == 1.0
    assert not list(tmp_path.glob(".*partial")) and not list(tmp_path.glob("CURRENT.tmp-*"))


def test_a_crash_mid_write_leaves_current_on_the_old_bundle(tmp_path, monkeypatch):
    old = write_bundle(tmp_path, "20260101T000000Z-aaaaaaaa", _pipeline(), b"onnx-1", {})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundle.Path, "write_text", crash)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path, "20260102T000000Z-bbbbbbbb", _pipeline(), b"onnx-2", {})
    monkeypatch.undo()

    assert read_current(tmp_path) == old.name
    assert not (tmp_path / "20260102T000000Z-bbbbbbbb").exists()
    assert not list(tmp_path.glob(".*partial"))


def test_versions_sort_by_time():
    from datetime import UTC, datetime

    early = bundle_version("1a2b3c4d-run", datetime(2026, 11, 27, 9, 15, tzinfo=UTC))
    late = bundle_version("00000000-run", datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    assert early == "20261127T091500Z-1a2b3c4d" and early < late
