"""The figures the ML assets show: the leaderboard, the champion on held-out rows and SHAP importance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from sales_assets.metadata import pyplot, save_figure


def leaderboard_plot(board: pl.DataFrame, path: Path) -> dg.MetadataValue:
    fig, axis = pyplot().subplots(figsize=(8, 0.45 * board.height + 1.5))
    ordered = board.reverse()
    axis.barh(ordered["model"].to_list(), ordered["rmse_mean"].to_list(), xerr=ordered["rmse_std"].to_list())
    axis.set_xlabel("CV RMSE (mean ± sd)")
    axis.set_title("Leaderboard")
    return save_figure(
        fig, path, caption="CV RMSE of every model (mean ± sd over the folds), best at the top"
    )


def holdout_plot(y_true: np.ndarray, y_pred: np.ndarray, title: str, path: Path) -> dg.MetadataValue:
    fig, axis = pyplot().subplots(figsize=(6, 6))
    axis.scatter(y_true, y_pred, s=8, alpha=0.5)
    limit = float(max(y_true.max(), y_pred.max()))
    axis.plot([0, limit], [0, limit], color="grey", linewidth=1)
    axis.set_xlabel("actual SALES")
    axis.set_ylabel("predicted SALES")
    axis.set_title(title)
    return save_figure(fig, path, caption="The champion's predictions against actual SALES on held-out rows")


def importance_plot(ranked: pl.DataFrame, title: str, path: Path) -> dg.MetadataValue:
    fig, axis = pyplot().subplots(figsize=(7, 0.4 * ranked.height + 1.5))
    ordered = ranked.reverse()
    axis.barh(ordered["feature"].to_list(), ordered["mean_abs_shap"].to_list())
    axis.set_xlabel("mean |SHAP| (SALES)")
    axis.set_title(title)
    return save_figure(fig, path, caption="Mean |SHAP| per input feature of the champion (SALES units)")
