"""The analyst's dashboard: headline numbers, sales by product line, country and month, the model
leaderboard, SHAP importances and per-segment forecasts, read from the materialised output files only.

Every sales figure comes from the one query layer, `sales_queries.SalesQueries` (DuckDB aggregates): with
one CSV (the default) over the hive-partitioned Parquet copy of the cleaned export; with a folder of
exports (`SALES_RAW_DIR`) over the warehouse's DuckDB table `sales` (one row per order line, from the newest
export), opened read-only (the warehouse swaps in a new file whole, so a reader never waits on it). Models
and forecasts come from the JSON reports. Every number is written by `sales_serving.contract.formatting`.
This file only renders. Start it from the project root with

    .venv/bin/streamlit run dashboard/app.py --server.headless true

with SALES_DATA_DIR (default `data/`) naming the data folder the assets wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import altair as alt
import duckdb
import polars as pl
import polars.selectors as cs
import streamlit as st

# `streamlit run` puts this file's folder on sys.path, so the page's own modules import by name.
from sales_queries import Filters, SalesQueries

from sales_assets.ml.report_model import METRICS_FILE, SHAP_FILE, MetricsReport, ShapReport
from sales_assets.readable import readable_columns
from sales_assets.settings import Settings
from sales_assets.timeseries.report_model import HIERARCHY_FILE, HierarchyReport, TimeseriesReport
from sales_serving.contract.formatting import (
    CURRENCY,
    MONEY_D3_FORMAT,
    Quantity,
    count,
    format_quantity,
    money,
)

TS_REPORT_GLOB = "sales_ts_risk_*.json"

REFRESH_COMMAND = (
    "DAGSTER_HOME=$PWD/dagster_home .venv/bin/dagster job execute -m sales_assets.definitions -j refresh_all"
)
# Folder mode: the exports are cleaned (one partition each) before the refresh reads them.
EXPORTS_COMMAND = "DAGSTER_HOME=$PWD/dagster_home .venv/bin/dagster sensor start raw_export_files -m sales_assets.definitions"
SEGMENT_COMMAND = (
    "DAGSTER_HOME=$PWD/dagster_home .venv/bin/dagster asset materialize -m sales_assets.definitions "
    "--select ts_risk_reports --partition ALL"
)
# Vega-Lite's d3 format for dollar amounts on chart axes (whole dollars: ticks); tooltips use MONEY_D3_FORMAT.
AXIS_DOLLAR_FORMAT = "$,.0f"


@dataclass(frozen=True)
class ExpectedOutput:
    label: str
    path: Path
    command: str

    @property
    def present(self) -> bool:
        if "*" in self.path.name:
            return any(self.path.parent.glob(self.path.name))
        if self.path.suffix:
            return self.path.is_file()
        return self.path.is_dir() and any(self.path.rglob("*.parquet"))


def expected_outputs(settings: Settings) -> dict[str, ExpectedOutput]:
    """What the page reads. With a folder of exports (`SALES_RAW_DIR`) the sales are the warehouse's
    DuckDB file (the single CSV's Parquet copy is absent or stale then)."""
    sales = (
        ExpectedOutput("Cleaned sales (Parquet by YEAR)", settings.parquet_dir, REFRESH_COMMAND)
        if settings.raw_dir_path is None
        else ExpectedOutput(
            f"Deduplicated sales (DuckDB table {settings.warehouse.table}, from the folder of exports)",
            settings.duckdb_path,
            f"{EXPORTS_COMMAND}\n{REFRESH_COMMAND}",
        )
    )
    return {
        "sales": sales,
        "metrics": ExpectedOutput("Model leaderboard", settings.metrics_dir / METRICS_FILE, REFRESH_COMMAND),
        "shap": ExpectedOutput("SHAP importances", settings.explainability_dir / SHAP_FILE, REFRESH_COMMAND),
        "timeseries": ExpectedOutput(
            "Forecast and risk reports", settings.timeseries_dir / TS_REPORT_GLOB, SEGMENT_COMMAND
        ),
    }


def timeseries_reports(directory: Path) -> dict[str, Path]:
    """Segment key -> report path, for the current reports only (`archive/` holds those of segments the data
    no longer has). Raises ValueError naming a file that is not a report of the current shape."""
    return {read_timeseries_report(path).segment.key: path for path in sorted(directory.glob(TS_REPORT_GLOB))}


def read_timeseries_report(path: Path) -> TimeseriesReport:
    """One segment's report through the model the asset validates it with (ValueError names the file)."""
    return TimeseriesReport.read(path)


def bar_chart(
    frame: pl.DataFrame, category: str, value: str, value_title: str, value_format: str, tooltip_format: str
) -> alt.Chart:
    """Horizontal bars, largest on top, with category labels never cut short (Vega-Lite's default
    `labelLimit` of 180 px ellipsises long names such as SHAP's one-hot features)."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(value, title=value_title, axis=alt.Axis(format=value_format)),
            y=alt.Y(category, sort="-x", title=None, axis=alt.Axis(labelLimit=0)),
            tooltip=[category, alt.Tooltip(value, format=tooltip_format)],
        )
    )


def month_chart(monthly: pl.DataFrame) -> alt.LayerChart:
    """Monthly SALES as a line with a point per month. A partial month's point is an orange triangle with a
    legend saying so; without a partial month there is no legend (nothing to tell apart)."""
    has_partial = bool(monthly["partial"].any())
    shown = monthly if has_partial else monthly.drop("partial")
    tooltip = [alt.Tooltip("month:T", format="%Y-%m"), alt.Tooltip("SALES:Q", format=MONEY_D3_FORMAT)]
    base = alt.Chart(shown).encode(
        x=alt.X("month:T", title=None),
        y=alt.Y("SALES:Q", title=f"Sales ({CURRENCY})", axis=alt.Axis(format=AXIS_DOLLAR_FORMAT)),
        tooltip=[*tooltip, "partial"] if has_partial else tooltip,
    )
    points = base.mark_point(size=90, filled=True, opacity=1, color="#1c83e1")
    if has_partial:
        month_kind = alt.Legend(labelExpr="datum.label == 'true' ? 'partial (data stops early)' : 'complete'")
        points = points.encode(
            shape=alt.Shape(
                "partial:N",
                title="Month",
                scale=alt.Scale(domain=[False, True], range=["circle", "triangle-down"]),
                legend=month_kind,
            ),
            color=alt.Color(
                "partial:N",
                title="Month",
                scale=alt.Scale(domain=[False, True], range=["#1c83e1", "#ff8700"]),
                legend=month_kind,
            ),
        )
    # Padding keeps the rotated axis title and the newest month's marker inside the drawing.
    return (base.mark_line() + points).properties(padding={"left": 8, "right": 16, "top": 8, "bottom": 4})


# ---- models -----------------------------------------------------------------------------------------


def leaderboard(metrics: MetricsReport) -> tuple[pl.DataFrame, str]:
    """The models of `sales_regression_metrics.json` (read with `MetricsReport.read`), best CV RMSE first,
    with the champion marked, and the champion's name."""
    champion = metrics.champion.model
    rows = [
        {
            "model": entry.model,
            "champion": entry.model == champion,
            "estimator": entry.estimator,
            "CV RMSE": entry.cv.rmse_mean,
            "CV RMSE sd": entry.cv.rmse_std,
            "CV MAE": entry.cv.mae_mean,
            "CV R2": entry.cv.r2_mean,
            "fit seconds": entry.fit_seconds,
        }
        for entry in metrics.models
    ]
    return pl.DataFrame(rows).sort("CV RMSE"), champion


# What the leaderboard's numbers are, where its column names do not say it (`readable_columns`).
LEADERBOARD_QUANTITIES = {
    "CV RMSE": Quantity.MONEY,
    "CV RMSE sd": Quantity.MONEY,
    "CV MAE": Quantity.MONEY,
    "CV R2": Quantity.SHARE,
    "fit seconds": Quantity.MEASURE,
}


def shap_importances(report: ShapReport) -> pl.DataFrame:
    """Feature and mean |SHAP|, largest first, from `shap_global_importance.json` (read with
    `ShapReport.read`)."""
    rows = [{"feature": e.feature, "importance": e.mean_abs_shap} for e in report.importance]
    return pl.DataFrame(rows, schema={"feature": pl.String, "importance": pl.Float64}).sort(
        "importance", descending=True
    )


# ---- forecasts --------------------------------------------------------------------------------------


def forecast_frame(report: TimeseriesReport) -> pl.DataFrame:
    """History and forecast on one monthly axis: `SALES` for the past, `forecast` and the interval
    bounds for the months ahead."""
    frames = []
    if report.history:
        frames.append(pl.DataFrame([{"month": p.month, "SALES": p.sales} for p in report.history]))
    if report.forecast is not None:
        frames.append(pl.DataFrame([p.model_dump() for p in report.forecast.points]))
    if not frames:
        return pl.DataFrame()
    return (
        pl.concat(frames, how="diagonal_relaxed")
        .with_columns(pl.col("month").str.to_date(), cs.float().cast(pl.Float64))
        .sort("month")
    )


def forecast_axis_top(frame: pl.DataFrame) -> float:
    """The y axis' top: 10% above the history, the forecast and its 80% band. The 95% band does not set
    it: one wide band would flatten everything else (it is clipped at the frame; its figures are in the
    table)."""
    shown = [c for c in ("SALES", "forecast", "upper_80") if c in frame.columns]
    top = max((frame[c].max() or 0.0) for c in shown) if shown else 0.0
    return 1.1 * top if top > 0 else 1.0


def forecast_chart(frame: pl.DataFrame) -> alt.LayerChart:
    """History and forecast with the 80% and 95% bands, on an axis that follows the data."""
    scale = alt.Scale(domain=[0, forecast_axis_top(frame)], clamp=True)
    x = alt.X("month:T", title=None)
    y_title = f"Sales ({CURRENCY})"
    layers = []
    for level, opacity in ((95, 0.15), (80, 0.3)):
        if f"upper_{level}" in frame.columns:
            layers.append(
                alt.Chart(frame)
                .mark_area(opacity=opacity, color="#1c83e1", clip=True)
                .encode(
                    x=x,
                    y=alt.Y(
                        f"lower_{level}:Q",
                        scale=scale,
                        title=y_title,
                        axis=alt.Axis(format=AXIS_DOLLAR_FORMAT),
                    ),
                    y2=f"upper_{level}:Q",
                )
            )
    for column, color in (("SALES", "#262730"), ("forecast", "#1c83e1")):
        if column in frame.columns:
            layers.append(
                alt.Chart(frame)
                .mark_line(point=True, color=color)
                .encode(
                    x=x,
                    y=alt.Y(
                        f"{column}:Q", scale=scale, title=y_title, axis=alt.Axis(format=AXIS_DOLLAR_FORMAT)
                    ),
                    tooltip=[
                        alt.Tooltip("month:T", format="%Y-%m"),
                        alt.Tooltip(f"{column}:Q", format=MONEY_D3_FORMAT),
                    ],
                )
            )
    return alt.layer(*layers).properties(padding={"left": 8, "right": 16, "top": 8, "bottom": 4})


def origin_table(report: TimeseriesReport) -> pl.DataFrame:
    """At each evaluation origin: what the rule chose on the months before it, its RMSE, seasonal naive's
    and the difference, in dollars (the paired comparison the reported score rests on)."""
    scores = report.decision.evaluation.origins if report.decision else []
    return pl.DataFrame(
        {
            "origin": [s.origin for s in scores],
            "chosen on months up to": [s.choice_saw_until for s in scores],
            "chosen": [s.shipped_model for s in scores],
            f"RMSE ({CURRENCY})": [money(s.rmse, symbol=True) for s in scores],
            f"seasonal naive RMSE ({CURRENCY})": [money(s.seasonal_naive_rmse, symbol=True) for s in scores],
            f"difference ({CURRENCY})": [money(s.difference, symbol=True) for s in scores],
        },
        schema=dict.fromkeys(
            [
                "origin",
                "chosen on months up to",
                "chosen",
                f"RMSE ({CURRENCY})",
                f"seasonal naive RMSE ({CURRENCY})",
                f"difference ({CURRENCY})",
            ],
            pl.String,
        ),
    )


def risk_table(report: TimeseriesReport) -> pl.DataFrame:
    """The risk section as measure/value rows: monthly figures (never annualised), flags and caveats."""
    risk = report.risk
    rows: list[tuple[str, Any]] = [
        ("model", risk.model),
        ("status", risk.status if risk.reason is None else f"{risk.status}: {risk.reason}"),
        ("exploratory", risk.exploratory),
        ("monthly returns used", risk.n_observations),
        ("mean monthly change (%)", risk.mean_return_pct),
        ("sd of monthly change (%)", risk.sd_return_pct),
        ("long-run monthly volatility (%)", risk.long_run_volatility_monthly_pct),
        ("persistence (alpha + beta)", risk.persistence),
        ("converged", risk.converged),
        *((f"parameter {name}", value) for name, value in (risk.params or {}).items()),
        *((f"on bound: {name}", side) for name, side in risk.parameters_on_bounds.items()),
        *(("caveat", caveat) for caveat in risk.caveats),
    ]
    return pl.DataFrame(
        {
            "measure": [name for name, _ in rows],
            "value": [format_quantity(v, Quantity.MEASURE) for _, v in rows],
        },
        schema={"measure": pl.String, "value": pl.String},
    )


def backtest_table(report: TimeseriesReport) -> pl.DataFrame:
    """Each candidate's eligibility, its RMSE on the shipped choice's selection origins and its mean RMSE
    over the evaluation origins, in dollars."""
    candidates = report.backtest.candidates if report.backtest else []
    return pl.DataFrame(
        {
            "model": [c.model for c in candidates],
            "eligible": ["yes" if c.eligible else "no" for c in candidates],
            f"selection RMSE ({CURRENCY})": [
                money(c.selection.rmse, symbol=True) if c.selection else "" for c in candidates
            ],
            f"evaluation RMSE ({CURRENCY})": [
                money(c.evaluation_mean_rmse, symbol=True) if c.evaluation_mean_rmse is not None else ""
                for c in candidates
            ],
        },
        schema={"model": pl.String, "eligible": pl.String}
        | {f"{phase} RMSE ({CURRENCY})": pl.String for phase in ("selection", "evaluation")},
    )


def hierarchy_forecast(directory: Path, segment: str) -> tuple[str, pl.DataFrame] | None:
    """(the reconciliation that shipped, the coherent forecast of `segment`) from the hierarchy report, or
    None when there is none or `segment` is not a node of it (a country pair)."""
    path = directory / HIERARCHY_FILE
    if not path.is_file():
        return None
    hierarchy = HierarchyReport.read(path)
    node = next((f for f in hierarchy.forecasts if f.segment == segment), None)
    if node is None:
        return None
    points = pl.DataFrame([p.model_dump() for p in node.points])
    return hierarchy.reason, points.with_columns(pl.col("month").str.to_date())


# ---- the page ---------------------------------------------------------------------------------------


Report = TypeVar("Report")


def _read_or_report(read: Callable[[Path], Report], path: Path) -> Report | None:
    """The report `read` gives for `path`, or None after showing why it cannot be read (the error names the
    file); the rest of the page still renders."""
    try:
        return read(path)
    except (OSError, ValueError) as error:
        st.error(str(error))
        return None


def _missing_note(output: ExpectedOutput) -> None:
    st.info(f"{output.label}: `{output.path}` is missing. Produce it with")
    st.code(output.command, language="bash", wrap_lines=True)


def render_missing_page(settings: Settings, outputs: dict[str, ExpectedOutput]) -> None:
    st.error(
        f"Missing outputs: the cleaned sales data under `{settings.root}` has not been materialised yet."
    )
    # st.table renders plain HTML, so the paths are text a reader (and a test) can find on the page.
    st.table(
        pl.DataFrame(
            {
                "output": [o.label for o in outputs.values()],
                "path": [str(o.path) for o in outputs.values()],
                "status": ["present" if o.present else "missing" for o in outputs.values()],
            }
        )
    )
    st.markdown("Materialise the graph (from the project root), then reload this page:")
    st.code(f"{REFRESH_COMMAND}\n{SEGMENT_COMMAND}", language="bash", wrap_lines=True)
    st.caption("Or open the Dagster UI (`dagster dev -w workspace.yaml`) and materialise all assets.")


def render_sales(parquet_dir: Path) -> None:
    """The sales section on the single CSV's cleaned Parquet copy."""
    _render_figures(
        SalesQueries.from_parquet(parquet_dir),
        lambda lines: (
            f"{count(lines)} order lines from `{parquet_dir}`; amounts are SALES in US dollars ({CURRENCY})."
        ),
    )


def render_warehouse_sales(settings: Settings) -> None:
    """The sales section with a folder of exports: the warehouse's deduplicated table, read-only, with the
    exports it was built from named on the page."""
    path, table = settings.duckdb_path, settings.warehouse.table
    with duckdb.connect(str(path), read_only=True) as conn:
        sales = SalesQueries.from_warehouse(conn, table, where=path)
        exports = sales.exports()
        if exports is None:
            st.warning(
                f"`{path}` was not built from the folder of exports `{settings.raw_dir_path}` (no "
                f"{table}_exports table beside {table}): these figures are of an earlier build. Clean the "
                "exports and rerun `refresh_all`."
            )
        built_from = (
            ""
            if exports is None
            else f" (folder of exports `{settings.raw_dir_path}`, {count(exports.height)} export(s): one row "
            "per order line, from the newest export that has it)"
        )

        def source(lines: int) -> str:
            return (
                f"{count(lines)} order lines from the warehouse table `{table}` in `{path}`{built_from}; "
                f"amounts are SALES in US dollars ({CURRENCY})."
            )

        _render_figures(sales, source)
        if exports is not None:
            with st.expander(f"Exports the table was built from ({count(exports.height)}, oldest first)"):
                st.dataframe(exports, hide_index=True)


def _render_figures(sales: SalesQueries, source: Callable[[int], str]) -> None:
    options = sales.filter_options()
    with st.sidebar:
        st.header("Filters")
        chosen = Filters(
            tuple(st.multiselect("Product line", options["PRODUCTLINE"])),
            tuple(st.multiselect("Country", options["COUNTRY"])),
            tuple(st.multiselect("Year", options["YEAR"])),
        )

    numbers = sales.headline(chosen)
    total, orders, customers, country_count = st.columns(4)
    total.metric(f"Total sales ({CURRENCY})", money(numbers["total_sales"], symbol=True))
    orders.metric("Orders", count(numbers["orders"]))
    customers.metric("Customers", count(numbers["customers"]))
    country_count.metric("Countries", count(numbers["countries"]))
    st.caption(source(numbers["order_lines"]))

    sales_title = f"Sales ({CURRENCY})"
    left, right = st.columns(2)
    for column, heading, place in (("PRODUCTLINE", "product line", left), ("COUNTRY", "country", right)):
        with place:
            st.subheader(f"Sales by {heading}")
            chart = bar_chart(
                sales.sales_by(column, chosen),
                column,
                "SALES",
                sales_title,
                AXIS_DOLLAR_FORMAT,
                MONEY_D3_FORMAT,
            )
            st.altair_chart(chart, width="stretch")
    st.subheader("Sales by month")
    st.altair_chart(month_chart(sales.sales_by_month(chosen)), width="stretch")
    if (partial := sales.partial_month()) is not None:
        st.caption(
            f"{partial.start:%B %Y} is a partial month (marked ▼): the data stops on "
            f"{partial.last_order:%Y-%m-%d}, before the month's last day, so its total is not comparable "
            "with full months."
        )


def render_models(outputs: dict[str, ExpectedOutput]) -> None:
    st.header("Model leaderboard")
    if not outputs["metrics"].present:
        _missing_note(outputs["metrics"])
    elif (metrics := _read_or_report(MetricsReport.read, outputs["metrics"].path)) is not None:
        table, champion = leaderboard(metrics)
        st.markdown(
            f"Champion: **{champion}** (chosen by CV RMSE; its held-out scores are in the metrics file)."
            f" RMSE and MAE are errors of one order line's SALES, in {CURRENCY}."
        )
        st.table(readable_columns(table, LEADERBOARD_QUANTITIES))

    st.header("SHAP importances")
    if not outputs["shap"].present:
        _missing_note(outputs["shap"])
    elif (shap := _read_or_report(ShapReport.read, outputs["shap"].path)) is not None:
        importances = shap_importances(shap)
        title = f"Mean |SHAP| ({CURRENCY} of predicted SALES)"
        chart = bar_chart(importances, "feature", "importance", title, ",.0f", MONEY_D3_FORMAT)
        st.altair_chart(chart, width="stretch")


def render_forecasts(outputs: dict[str, ExpectedOutput]) -> None:
    st.header("Forecast and risk by segment")
    try:
        reports = timeseries_reports(outputs["timeseries"].path.parent)
    except ValueError as error:
        st.error(str(error))
        return
    if not reports:
        _missing_note(outputs["timeseries"])
        return
    labels = list(reports)
    segment = st.selectbox("Segment", labels, index=labels.index("ALL") if "ALL" in labels else 0)
    try:
        report = read_timeseries_report(reports[segment])
    except (OSError, ValueError) as error:
        st.error(str(error))
        return
    reason = f": {report.reason}" if report.reason else ""
    st.markdown(f"Segment `{segment}`, status **{report.status}**{reason}")
    if report.decision is not None:
        # The one decision the report, the plot legend and the asset check agree on.
        st.markdown(report.decision.reason)
    frame = forecast_frame(report)
    if not frame.is_empty():
        st.altair_chart(forecast_chart(frame), use_container_width=True)
    if report.forecast is not None:
        coverage = ", ".join(f"{c.level}%: {c.coverage:.0%}" for c in report.forecast.coverage)
        st.caption(
            f"Interval coverage measured on {report.forecast.coverage[0].points} later backtest points "
            f"({coverage}). {report.backtest.protocol.description}"
        )
        st.subheader("Scored at each evaluation origin")
        st.table(origin_table(report))
        st.table(backtest_table(report))
    picture = reports[segment].with_suffix(".png")
    if picture.is_file():
        st.image(str(picture))
    try:
        coherent = hierarchy_forecast(reports[segment].parent, segment)
    except ValueError as error:
        st.error(str(error))
        coherent = None
    if coherent is not None:
        st.subheader("Coherent forecast (product lines sum to ALL)")
        st.markdown(coherent[0])
        st.table(readable_columns(coherent[1]))
    st.subheader("Risk (GARCH on monthly changes; monthly figures)")
    st.table(risk_table(report))
    with st.expander("Full report"):
        st.json(report.model_dump(mode="json"))


def main() -> None:
    st.set_page_config(page_title="Sales analytics", layout="wide")
    settings = Settings()
    outputs = expected_outputs(settings)
    st.title("Sales analytics")
    if not outputs["sales"].present:
        render_missing_page(settings, outputs)
        return
    if settings.raw_dir_path is None:
        render_sales(settings.parquet_dir)
    else:
        render_warehouse_sales(settings)
    render_models(outputs)
    render_forecasts(outputs)


if __name__ == "__main__":
    main()
