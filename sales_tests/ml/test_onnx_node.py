"""model.onnx outside Python: onnxruntime-node (npm) scores the held-out order lines from their request fields
alone and matches the Python service within 0.01. Skips only where node or npm is missing."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from sales_assets.ml.candidate import HOLDOUT_FILE
from sales_serving.app import create_app
from sales_serving.contract.bundle import read_current
from sales_serving.settings import ServingSettings

SCORER = Path(__file__).with_name("onnx_score.js")
NPM_PACKAGE = "onnxruntime-node"


@pytest.fixture(scope="session")
def onnxruntime_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with onnxruntime-node installed, cached beside pytest's temp folders across sessions. The
    package bundles its CPU binaries; the install script (which would fetch CUDA libraries) is skipped."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run onnxruntime-node")
    folder = tmp_path_factory.getbasetemp().parent / "onnxruntime-node-cache"
    if not (folder / "node_modules" / NPM_PACKAGE / "package.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"name": "onnx-scoring", "private": true}\n', encoding="utf-8")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", NPM_PACKAGE],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return folder


def test_onnxruntime_node_scores_held_out_rows_like_the_python_service(ml_run, onnxruntime_node, tmp_path):
    settings = ml_run.settings
    bundle = settings.models_dir / read_current(settings.models_dir)
    metadata = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["onnx"]["input_kind"] == "request_fields"
    fields = [item["name"] for item in metadata["onnx"]["inputs"]]
    assert fields == metadata["request_fields"]
    held_out = pd.read_parquet(settings.model_candidate_dir / HOLDOUT_FILE)
    rows = json.loads(held_out[fields].to_json(orient="records"))  # plain JSON numbers and strings
    rows_path = tmp_path / "rows.json"
    rows_path.write_text(json.dumps(rows), encoding="utf-8")

    scored = subprocess.run(
        ["node", str(SCORER), str(bundle / "model.onnx"), str(rows_path), str(bundle / "metadata.json")],
        # require() looks beside the script, so name the installed packages' folder explicitly.
        env={**os.environ, "NODE_PATH": str(onnxruntime_node / "node_modules")},
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    from_node = json.loads(scored.stdout)

    service = ServingSettings(data_dir=ml_run.data_dir, serving_backend="joblib")
    with TestClient(create_app(service)) as client:
        response = client.post("/predict/batch?precision=full", json={"rows": rows})
    assert response.status_code == 200, response.text
    from_python = response.json()["predictions"]

    assert len(from_node) == len(from_python) == len(held_out) > 0
    worst = max(abs(a - b) for a, b in zip(from_node, from_python, strict=True))
    assert worst <= 0.01, f"largest difference {worst}"
