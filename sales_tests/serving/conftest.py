"""Fixtures for serving tests: two real bundles (sklearn + skl2onnx) built once per session, copied per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from sales_serving.app import create_app
from sales_serving.schema import EXAMPLE_ROW
from sales_serving.settings import ServingSettings
from sales_tests.serving.bundle_factory import export_onnx, train_pipeline, write_bundle

VERSION_1 = "20261127T091500Z-aaaaaaaa"
VERSION_2 = "20261127T101500Z-bbbbbbbb"


@pytest.fixture(scope="session")
def trained() -> dict[str, tuple[Pipeline, bytes]]:
    """Two differently fitted pipelines with their ONNX exports, so a reload visibly changes answers."""
    models = {}
    for version, seed, trees in ((VERSION_1, 0, 40), (VERSION_2, 1, 80)):
        pipeline, _ = train_pipeline(rows=500, seed=seed, n_estimators=trees)
        models[version] = (pipeline, export_onnx(pipeline))
    return models


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def models_dir(data_dir: Path) -> Path:
    return data_dir / "models" / "sales_regressor"


@pytest.fixture
def bundle_v1(models_dir: Path, trained: dict[str, tuple[Pipeline, bytes]]) -> Path:
    return write_bundle(models_dir, VERSION_1, *trained[VERSION_1])


@pytest.fixture
def bundle_v2(models_dir: Path, trained: dict[str, tuple[Pipeline, bytes]]) -> Path:
    """Written next to v1 but not yet named by CURRENT."""
    return write_bundle(models_dir, VERSION_2, *trained[VERSION_2], make_current=False)


@pytest.fixture
def settings(data_dir: Path) -> ServingSettings:
    return ServingSettings(data_dir=data_dir, serving_reload_interval_ms=20, serving_batch_limit=50)


@pytest.fixture
def client(settings: ServingSettings, bundle_v1: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def example_row() -> dict:
    return dict(EXAMPLE_ROW)


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics parsed with prometheus_client's parser: (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
