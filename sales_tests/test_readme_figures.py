"""The README's model figures are written by scripts/readme_figures.py from the metrics file a refresh
produces, naming the refresh's plain GradientBoosting (`gradient_boosting_200`), never a model only a
benchmark trains."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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
