"""Serve only what was published: every file of a bundle is checked against its manifest before anything in
it is parsed or unpickled, by the server (refused, old model kept, status "degraded") and by sales-predict."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sales_serving.app import create_app
from sales_serving.cli import main as predict_main
from sales_serving.contract.bundle import MANIFEST_FILE, BundleError, point_current, verify_bundle
from sales_serving.loading import load_bundle
from sales_serving.schema import EXAMPLE_ROW
from sales_serving.settings import ServingSettings
from sales_tests.serving.conftest import VERSION_1, VERSION_2


class WritesAFile:
    """A pickle whose loading would create `path`: what a crafted pipeline.joblib does to its reader."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (self.path, "the pickle's code ran"))


def plant_pickle(bundle: Path, witness: Path) -> None:
    (bundle / "pipeline.joblib").write_bytes(pickle.dumps(WritesAFile(witness)))


def test_a_fresh_bundle_verifies(bundle_v1: Path) -> None:
    manifest = verify_bundle(bundle_v1)
    assert set(manifest.files) == {"pipeline.joblib", "model.onnx", "metadata.json"}


def test_another_valid_onnx_in_place_of_the_published_one_is_refused(
    bundle_v1: Path, bundle_v2: Path
) -> None:
    shutil.copyfile(bundle_v2 / "model.onnx", bundle_v1 / "model.onnx")
    with pytest.raises(BundleError, match=r"model.onnx: sha256 .* differs from the published"):
        load_bundle(bundle_v1)


@pytest.mark.parametrize("backend", ["auto", "onnx", "joblib"])
def test_a_crafted_pickle_is_never_unpickled(bundle_v1: Path, tmp_path: Path, backend: str) -> None:
    witness = tmp_path / "pwned.txt"
    plant_pickle(bundle_v1, witness)
    with pytest.raises(BundleError, match=r"pipeline.joblib: sha256 .* differs from the published"):
        load_bundle(bundle_v1, backend)
    assert not witness.exists()


def test_the_crafted_pickle_would_run_if_it_were_loaded(tmp_path: Path) -> None:
    """The witness works: unpickling the planted bytes does create the file (so the test above can fail)."""
    witness = tmp_path / "pwned.txt"
    pickle.loads(pickle.dumps(WritesAFile(witness)))
    assert witness.read_text() == "the pickle's code ran"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: (b / MANIFEST_FILE).unlink(), "manifest.json: missing"),
        (lambda b: (b / MANIFEST_FILE).write_text("{}"), "not a manifest"),
        (lambda b: (b / "extra.py").write_text("print(1)"), r"holds \['extra.py'\]"),
        (lambda b: (b / "model.onnx").unlink(), "listed in the manifest but missing"),
        (lambda b: (b / "metadata.json").write_text(json.dumps({"x": 1})), "metadata.json: sha256"),
    ],
    ids=["no-manifest", "bad-manifest", "unlisted-file", "listed-missing", "metadata-changed"],
)
def test_a_bundle_that_is_not_as_published_is_refused(bundle_v1: Path, change, expected: str) -> None:
    change(bundle_v1)
    with pytest.raises(BundleError, match=expected):
        load_bundle(bundle_v1)


def test_the_server_keeps_the_old_model_and_says_degraded(
    settings: ServingSettings, models_dir: Path, bundle_v1: Path, bundle_v2: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "pwned.txt"
    with TestClient(create_app(settings)) as client:
        before = client.post("/predict", json=EXAMPLE_ROW).json()
        # v2 tampered twice over: another model's graph and a crafted pickle.
        shutil.copyfile(bundle_v1 / "model.onnx", bundle_v2 / "model.onnx")
        plant_pickle(bundle_v2, witness)
        point_current(models_dir, VERSION_2)
        client.app.state.holder.refresh(force=True)
        health = client.get("/health").json()
        after = client.post("/predict", json=EXAMPLE_ROW).json()
    assert health["status"] == "degraded"
    assert f"still serving {VERSION_1}" in json.dumps(health)
    assert after == before
    assert not witness.exists()


def test_sales_predict_refuses_a_tampered_bundle(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    bundle_v1: Path,
    bundle_v2: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("SALES_DATA_DIR", str(data_dir))
    witness = tmp_path / "pwned.txt"
    plant_pickle(bundle_v1, witness)
    assert predict_main(["--json", json.dumps(EXAMPLE_ROW), "--backend", "joblib"]) == 2
    assert "differs from the published" in capsys.readouterr().err
    assert not witness.exists()


def test_the_manifest_is_checked_once_per_load_not_per_request(client: TestClient, bundle_v1: Path) -> None:
    """Once loaded, answers come from memory: with the bundle's manifest gone, requests still answer (the
    check costs a load, never a request)."""
    (bundle_v1 / MANIFEST_FILE).unlink()
    answers = [client.post("/predict", json=EXAMPLE_ROW) for _ in range(20)]
    assert {answer.status_code for answer in answers} == {200}
    assert client.get("/health").json()["status"] == "ok"
