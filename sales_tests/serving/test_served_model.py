"""ModelHolder: start without a model, swap on a CURRENT move, refuse a broken bundle and keep serving."""

from __future__ import annotations

from pathlib import Path

from sales_serving.contract.bundle import point_current
from sales_serving.schema import EXAMPLE_ROW
from sales_serving.served_model import HOW_TO_TRAIN, ModelHolder
from sales_tests.serving.conftest import VERSION_1, VERSION_2


def test_no_bundle_is_no_model_with_how_to(models_dir: Path) -> None:
    holder = ModelHolder(models_dir)
    assert holder.refresh(force=True) is None
    status = holder.status()
    assert status.status == "no_model"
    assert HOW_TO_TRAIN in (status.reason or "")
    assert holder.refusals == 0


def test_moving_current_swaps_the_model_and_old_reference_stays_usable(
    models_dir: Path, bundle_v1: Path, bundle_v2: Path
) -> None:
    holder = ModelHolder(models_dir, check_interval_seconds=3600)
    first = holder.refresh(force=True)
    assert first is not None and first.version == VERSION_1
    point_current(models_dir, VERSION_2)
    # Within the interval nothing is even stat-ed; the old model keeps answering.
    assert holder.refresh() is first
    second = holder.refresh(force=True)
    assert second is not None and second.version == VERSION_2
    assert holder.reloads == 2
    # A request that took `first` before the swap can still finish on it.
    predictions, _ = first.predict([EXAMPLE_ROW])
    assert predictions.shape == (1,)


def test_broken_bundle_is_refused_old_model_kept_and_reason_recorded(
    models_dir: Path, bundle_v1: Path, bundle_v2: Path
) -> None:
    holder = ModelHolder(models_dir)
    holder.refresh(force=True)
    (bundle_v2 / "model.onnx").write_bytes(b"truncated")
    point_current(models_dir, VERSION_2)
    assert holder.refresh(force=True).version == VERSION_1
    status = holder.status()
    assert status.status == "degraded"
    assert f"still serving {VERSION_1}" in status.reason
    assert "differs from the published" in status.reason
    assert holder.refusals == 1
    # The same broken CURRENT is not retried on every look (its stat did not change).
    holder.refresh(force=True)
    assert holder.refusals == 1
    point_current(models_dir, VERSION_1)
    holder.refresh(force=True)
    assert holder.status().status == "ok"


def test_deleted_current_keeps_serving_but_reports_it(models_dir: Path, bundle_v1: Path) -> None:
    holder = ModelHolder(models_dir)
    holder.refresh(force=True)
    (models_dir / "CURRENT").unlink()
    holder.refresh(force=True)
    status = holder.status()
    assert status.status == "degraded" and status.model.version == VERSION_1
    assert "CURRENT: missing" in status.reason
