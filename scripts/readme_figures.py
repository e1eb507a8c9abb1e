"""The README's model figures, written from the metrics file a refresh produced, so that the README says what
the code produces (its "plain GradientBoosting 580.7 / 308.1" was bench/bench_model_quality.py's own
`GradientBoostingRegressor()` baseline, which no refresh trains: a refresh's plain GradientBoosting is
`gradient_boosting_200`). Numbers are written by `sales_serving.contract.formatting`.

    .venv/bin/python scripts/readme_figures.py [DATA_DIR]    # default: SALES_DATA_DIR's settings

prints the "Models" line of the README's results; paste it after a refresh on the real file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sales_assets.ml.report_model import METRICS_FILE, MetricsReport  # noqa: E402
from sales_assets.settings import Settings  # noqa: E402
from sales_serving.contract.formatting import money, share  # noqa: E402

# The refresh's plain GradientBoosting (sales_assets/ml/catalogue.py), the comparison the README names.
PLAIN_GRADIENT_BOOSTING = "gradient_boosting_200"


def models_line(report: MetricsReport) -> str:
    """The README's "Models" line for `report`: protocol, the champion's CV scores, the plain
    GradientBoosting of the same run, the champion's held-out RMSE. Raises KeyError when the run did not
    train PLAIN_GRADIENT_BOOSTING."""
    protocol, champion = report.protocol, report.champion
    cv = champion.cv
    plain = {entry.model: entry for entry in report.models}[PLAIN_GRADIENT_BOOSTING].cv
    return (
        f"{protocol.cv_folds}-fold x {protocol.cv_repeats} CV on the training {1 - protocol.test_size:.0%}: "
        f"champion `{champion.model}` CV RMSE {money(cv.rmse_mean)} ± {money(cv.rmse_std)}, "
        f"MAE {money(cv.mae_mean)}, R2 {share(cv.r2_mean)} (`{PLAIN_GRADIENT_BOOSTING}`, the plain "
        f"GradientBoosting, in the same run: {money(plain.rmse_mean)}, {money(plain.mae_mean)}); held-out "
        f"RMSE {money(champion.holdout.rmse)}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, help="the refresh's SALES_DATA_DIR")
    args = parser.parse_args(argv)
    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    print(models_line(MetricsReport.read(settings.metrics_dir / METRICS_FILE)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
