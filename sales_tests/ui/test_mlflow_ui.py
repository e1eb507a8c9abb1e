"""The MLflow UI for real: `mlflow ui` on a store the project's tracking functions wrote, read in headless
Chromium at the address the project gives (`tracking.leaderboard_url`): the experiment opens in the
model-training view with the leaderboard's metrics as visible columns, among a hundred other columns."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from sales_assets.ml.tracking import (
    LEADERBOARD_METRICS,
    LEADERBOARD_VIEW_NAME,
    MLFLOW_UI_DEFAULT,
    MODEL_TRAINING_VIEW,
    configure_mlflow,
    leaderboard_url,
    log_model_run,
)
from sales_assets.settings import Settings
from sales_tests.ui.browser import HeadlessChromium, free_port, stop_process, wait_for_http

pytestmark = pytest.mark.browser

# The real store has about 128 columns (every model's parameters and metrics); the view must pick the
# leaderboard's out of as many.
OTHER_COLUMNS = 100
MODELS = ("catboost", "xgboost", "linear_regression")
# The column ids of the runs table's header cells (ag-grid; `metrics.`name`` for a metric), one per
# visible column.
HEADER_COLUMNS = "[...document.querySelectorAll('.ag-header-cell')].map(e => e.getAttribute('col-id'))"


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, str]]:
    """A store with three model runs logged as training logs them (`log_model_run`, the leaderboard's metric
    names and OTHER_COLUMNS more), served by `mlflow ui` on a free port. Yields (settings, the UI's base
    address, the experiment id)."""
    root = tmp_path_factory.mktemp("mlflow-ui")
    settings = Settings(data_dir=root / "data")
    experiment_id = configure_mlflow(settings)
    frame = pd.DataFrame({"QUANTITYORDERED": np.arange(1.0, 21.0), "PRICEEACH": np.linspace(50.0, 100.0, 20)})
    pipeline = Pipeline([("model", LinearRegression())]).fit(frame, frame.sum(axis=1))
    for rank, name in enumerate(MODELS, start=1):
        metrics = {metric: 500.0 + rank for metric in LEADERBOARD_METRICS} | {"leaderboard_rank": float(rank)}
        metrics |= {f"fold_{k}_rmse": float(k) for k in range(OTHER_COLUMNS // 2)}
        params = {f"param_{k}": k for k in range(OTHER_COLUMNS // 2)}
        tags = {"champion": str(rank == 1).lower()}
        log_model_run(name, pipeline, params, metrics, tags, frame.head(2))
    port, log = free_port(), root / "mlflow-ui.log"
    command = [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri"]
    command += [settings.mlflow_tracking_uri, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 180, process, log)
        yield settings, f"http://127.0.0.1:{port}", experiment_id
    finally:
        stop_process(process)


def test_the_leaderboard_address_opens_the_model_training_view_with_its_columns(
    mlflow_ui, chromium_executable: str, tmp_path: Path, screenshot_dir: Path
) -> None:
    settings, base, experiment_id = mlflow_ui
    url = leaderboard_url(settings, experiment_id)
    assert url.startswith(MLFLOW_UI_DEFAULT)  # what the quickstart and the asset's metadata show
    with HeadlessChromium(chromium_executable, tmp_path / "profile", width=1600) as browser:
        # What a newcomer meets at the experiment's bare address: MLflow's GenAI view (traces or
        # overview), no runs table; the test would fail the same way if the address lost its parameter.
        bare = browser.open(f"{base}/#/experiments/{experiment_id}")
        browser.wait_until(bare, "/workflowType=/.test(location.href)", timeout=180)
        assert "workflowType=genai" in browser.evaluate(bare, "location.href")
        browser.close_page(bare)

        page = browser.open(url.replace(MLFLOW_UI_DEFAULT, base))
        body = browser.wait_for_text(page, [*MODELS, f"{len(MODELS)} matching runs"], timeout=180)
        # The model-training view: the runs tab under the saved leaderboard view.
        opened = browser.evaluate(page, "location.href")
        assert f"/experiments/{experiment_id}/runs?" in opened and MODEL_TRAINING_VIEW in opened
        assert LEADERBOARD_VIEW_NAME in body
        wanted = [f"metrics.`{name}`" for name in LEADERBOARD_METRICS]
        browser.wait_until(page, f"{HEADER_COLUMNS}.includes({wanted[0]!r})", timeout=60)
        columns = browser.evaluate(page, HEADER_COLUMNS)
        assert set(wanted) <= set(columns), columns
        # None of the other hundred columns is shown: only the view's.
        assert not [c for c in columns if c and ("fold_" in c or "param_" in c)], columns
        browser.screenshot(page, screenshot_dir / "mlflow_leaderboard.png")
