"""The README's model figures are written by scripts/readme_figures.py from the metrics file a refresh
produces, naming the refresh's plain GradientBoosting (`gradient_boosting_200`), never a model only a
benchmark trains."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sales_assets.ml.report_model import METRICS_FILE
from sales_tests.ui.dashboard_fixture import write_dashboard_outputs

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "readme_figures.py"


def _line(data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(data_dir)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_the_models_line_is_written_from_the_metrics_file(tmp_path):
    settings = write_dashboard_outputs(tmp_path / "data")
    metrics = json.loads((settings.metrics_dir / METRICS_FILE).read_text(encoding="utf-8"))
    cv, plain = (
        metrics["champion"]["cv"],
        next(m for m in metrics["models"] if m["model"] == "gradient_boosting_200"),
    )
    done = _line(settings.root)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert (
        f"champion `{metrics['champion']['model']}` CV RMSE {cv['rmse_mean']:,.2f} ± {cv['rmse_std']:,.2f}"
        in line
    )
    assert f"in the same run: {plain['cv']['rmse_mean']:,.2f}, {plain['cv']['mae_mean']:,.2f})" in line
    assert f"held-out RMSE {metrics['champion']['holdout']['rmse']:,.2f}." in line


def test_the_readme_names_the_refresh_model_it_compares_with():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [models] = [line for line in readme.split("\n- ") if line.startswith("**Models**")]
    assert "`gradient_boosting_200`, the plain GradientBoosting, in the same run:" in models
    # Money to the cent, as the script writes it.
    assert re.search(r"CV RMSE \d{1,3}(,\d{3})*\.\d{2} ± \d+\.\d{2}", models), models


@pytest.mark.real_data
@pytest.mark.slow
def test_the_readme_models_line_is_what_a_refresh_on_the_real_file_writes(
    real_warehouse_data_dir, real_csv_path, tmp_path
):
    """Trains the default models on the real export, as a refresh does, and finds the script's line for that
    run in the README word for word."""
    import dagster as dg

    from sales_assets.ml.defs import assets as ml_assets
    from sales_assets.ml.report_model import MetricsReport
    from sales_assets.resources import build_resources

    data_dir = tmp_path / "data"
    shutil.copytree(real_warehouse_data_dir, data_dir)
    resources = build_resources(data_dir=data_dir, raw_csv=real_csv_path)
    run = dg.materialize(
        ml_assets,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        selection=dg.AssetSelection.assets("trained_models"),
    )
    assert run.success
    settings = resources["sales_settings"].get()
    spec = importlib.util.spec_from_file_location("readme_figures_under_test", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    line = script.models_line(MetricsReport.read(settings.metrics_dir / METRICS_FILE))
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert line in readme
