"""The analyst's dashboard: headline numbers, sales by product line, country and month, the model
leaderboard, SHAP importances and per-segment forecasts, read from the materialised output files only.

With one CSV (the default), sales come from the hive-partitioned Parquet copy of the cleaned export. With
a folder of exports (`SALES_RAW_DIR`), that copy is not what the warehouse holds, so sales come from the
DuckDB table `sales` (one row per order line, from the newest export), opened read-only: every figure is
an aggregate DuckDB computes, so the table never reaches Python (the warehouse swaps in a new file whole,
so a reader never waits on it). Models and forecasts come from the JSON reports. Start it from the
project root with

    .venv/bin/streamlit run dashboard/app.py --server.headless true

with SALES_DATA_DIR (default `data/`) naming the data folder the assets wrote.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import altair as alt
import duckdb
import polars as pl
import polars.selectors as cs
import streamlit as st

from sales_assets.ml.report_model import METRICS_FILE, SHAP_FILE, MetricsReport, ShapReport
from sales_assets.parquet_layer import resolve_layer
from sales_assets.settings import Settings
from sales_assets.timeseries.report_model import HIERARCHY_FILE, HierarchyReport, TimeseriesReport
from sales_assets.timeseries.series import month_is_complete

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
# Columns the dashboard reads from the cleaned Parquet (the warehouse contract guarantees them, no nulls).
SALES_COLUMNS = ("ORDERNUMBER", "SALES", "ORDERDATE", "PRODUCTLINE", "COUNTRY", "CUSTOMERNAME", "YEAR")
# The export's amounts (SALES, PRICEEACH, MSRP, and so the models' errors) are US dollars.
CURRENCY = "USD"
# Vega-Lite's d3 format for dollar amounts on chart axes and tooltips.
DOLLAR_FORMAT = "$,.0f"


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


# ---- sales from the Parquet copy --------------------------------------------------------------------


def scan_sales(parquet_dir: Path) -> pl.LazyFrame:
    # One version of the layer for the whole query: the folder is a symlink swapped on each refresh.
    frame = pl.scan_parquet(resolve_layer(parquet_dir), hive_partitioning=True)
    missing = [c for c in SALES_COLUMNS if c not in frame.collect_schema().names()]
    if missing:
        raise ValueError(f"{parquet_dir}: the sales Parquet lacks columns {missing}")
    return frame.select(SALES_COLUMNS)


def filter_options(sales: pl.LazyFrame) -> dict[str, list]:
    values = sales.select(
        pl.col(c).unique().sort().implode() for c in ("PRODUCTLINE", "COUNTRY", "YEAR")
    ).collect()
    return {c: values[c][0].to_list() for c in values.columns}


def filter_sales(
    sales: pl.LazyFrame, product_lines: list[str], countries: list[str], years: list[int]
) -> pl.LazyFrame:
    """An empty choice means no filter on that column."""
    for column, chosen in (("PRODUCTLINE", product_lines), ("COUNTRY", countries), ("YEAR", years)):
        if chosen:
            sales = sales.filter(pl.col(column).is_in(chosen))
    return sales


def headline(sales: pl.LazyFrame) -> dict[str, float | int]:
    row = sales.select(
        pl.col("SALES").sum().alias("total_sales"),
        pl.col("ORDERNUMBER").n_unique().alias("orders"),
        pl.col("CUSTOMERNAME").n_unique().alias("customers"),
        pl.col("COUNTRY").n_unique().alias("countries"),
        pl.len().alias("order_lines"),
    ).collect()
    return row.row(0, named=True)


def sales_by(sales: pl.LazyFrame, column: str) -> pl.DataFrame:
    return sales.group_by(column).agg(pl.col("SALES").sum()).sort("SALES", descending=True).collect()


def partial_month(sales: pl.LazyFrame) -> tuple[dt.date, dt.date] | None:
    """(first day of the newest month, last order date) when the data stops before that month's last day
    (the rule of `sales_assets.timeseries.series.month_is_complete`, which the forecasts use too); None
    when the newest month is complete. Pass the unfiltered sales: a filter that leaves a country's last
    order early in the month does not make the month partial."""
    last_order = sales.select(pl.col("ORDERDATE").max()).collect().item()
    if last_order is None or month_is_complete(last_order):
        return None
    return dt.date(last_order.year, last_order.month, 1), last_order.date()


def sales_by_month(sales: pl.LazyFrame, partial: dt.date | None = None) -> pl.DataFrame:
    """Monthly SALES (columns `month`, `SALES`, `partial`); `partial` is True on the month `partial`
    names (the first day of a month the data covers only in part)."""
    month = pl.col("ORDERDATE").dt.truncate("1mo").cast(pl.Date).alias("month")
    is_partial = pl.lit(False) if partial is None else pl.col("month") == partial
    return (
        sales.group_by(month)
        .agg(pl.col("SALES").sum())
        .with_columns(is_partial.alias("partial"))
        .sort("month")
        .collect()
    )


def dollars(amount: float | None) -> str:
    """`$1,234,567.89`: an amount of the export's currency (CURRENCY) for headline figures."""
    return f"${amount or 0:,.2f}"


def readable_number(value: Any) -> str:
    """A figure for a table cell: floats to four significant digits (thousands separated, never in
    exponent form above 1,000), integers with separators, anything else as text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def bar_chart(
    frame: pl.DataFrame, category: str, value: str, value_title: str, value_format: str
) -> alt.Chart:
    """Horizontal bars, largest on top, with category labels never cut short (Vega-Lite's default
    `labelLimit` of 180 px ellipsises long names such as SHAP's one-hot features)."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(value, title=value_title, axis=alt.Axis(format=value_format)),
            y=alt.Y(category, sort="-x", title=None, axis=alt.Axis(labelLimit=0)),
            tooltip=[category, alt.Tooltip(value, format=value_format)],
        )
    )


def month_chart(monthly: pl.DataFrame) -> alt.LayerChart:
    """Monthly SALES as a line with a point per month; a partial month's point is an orange triangle."""
    base = alt.Chart(monthly).encode(
        x=alt.X("month:T", title=None),
        y=alt.Y("SALES:Q", title=f"Sales ({CURRENCY})", axis=alt.Axis(format=DOLLAR_FORMAT)),
        tooltip=[
            alt.Tooltip("month:T", format="%Y-%m"),
            alt.Tooltip("SALES:Q", format=DOLLAR_FORMAT),
            "partial",
        ],
    )
    month_kind = alt.Legend(labelExpr="datum.label == 'true' ? 'partial (data stops early)' : 'complete'")
    points = base.mark_point(size=90, filled=True, opacity=1).encode(
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


# ---- sales from the warehouse (folder of exports) --------------------------------------------------


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class WarehouseSales:
    """The same figures as the Parquet functions above (`filter_options`, `headline`, `sales_by`,
    `partial_month`, `sales_by_month`), from the warehouse table over a read-only DuckDB connection. Each is
    one aggregate query (DuckDB streams the table and spills what does not fit), so only the small results
    reach Python. An empty choice means no filter on that column."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, table: str = "sales", where: Path | None = None):
        self.conn, self.name, self.table = conn, table, _identifier(table)
        columns = {row[0] for row in conn.execute(f"DESCRIBE {self.table}").fetchall()}
        missing = [c for c in SALES_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{where or table}: the {table} table lacks columns {missing}")

    def _filtered(self, product_lines: list[str], countries: list[str], years: list[int]) -> tuple[str, list]:
        clauses, params = [], []
        for column, chosen in (("PRODUCTLINE", product_lines), ("COUNTRY", countries), ("YEAR", years)):
            if chosen:
                clauses.append(f"{column} IN ({', '.join('?' * len(chosen))})")
                params.extend(chosen)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return f"FROM {self.table}{where}", params

    def filter_options(self) -> dict[str, list]:
        row = self.conn.execute(
            "SELECT "
            + ", ".join(f"list(DISTINCT {c} ORDER BY {c})" for c in ("PRODUCTLINE", "COUNTRY", "YEAR"))
            + f" FROM {self.table}"
        ).fetchone()
        return {
            c: [v for v in (values or []) if v is not None]
            for c, values in zip(("PRODUCTLINE", "COUNTRY", "YEAR"), row, strict=True)
        }

    def headline(self, product_lines=(), countries=(), years=()) -> dict[str, float | int]:
        source, params = self._filtered(list(product_lines), list(countries), list(years))
        row = self.conn.execute(
            "SELECT coalesce(sum(SALES), 0), count(DISTINCT ORDERNUMBER), count(DISTINCT CUSTOMERNAME), "
            f"count(DISTINCT COUNTRY), count(*) {source}",
            params,
        ).fetchone()
        return dict(zip(("total_sales", "orders", "customers", "countries", "order_lines"), row, strict=True))

    def sales_by(self, column: str, product_lines=(), countries=(), years=()) -> pl.DataFrame:
        if column not in SALES_COLUMNS:
            raise ValueError(f"not a sales column: {column}")
        source, params = self._filtered(list(product_lines), list(countries), list(years))
        rows = self.conn.execute(
            f"SELECT {column}, sum(SALES) {source} GROUP BY 1 ORDER BY 2 DESC, 1",
            params,
        ).fetchall()
        return pl.DataFrame(rows, schema={column: pl.String, "SALES": pl.Float64}, orient="row")

    def partial_month(self) -> tuple[dt.date, dt.date] | None:
        """As `partial_month`, over the whole table."""
        last_order = self.conn.execute(f"SELECT max(ORDERDATE) FROM {self.table}").fetchone()[0]
        if last_order is None:
            return None
        if not isinstance(last_order, dt.datetime):
            last_order = dt.datetime.combine(last_order, dt.time())
        if month_is_complete(last_order):
            return None
        return dt.date(last_order.year, last_order.month, 1), last_order.date()

    def sales_by_month(
        self, partial: dt.date | None = None, product_lines=(), countries=(), years=()
    ) -> pl.DataFrame:
        source, params = self._filtered(list(product_lines), list(countries), list(years))
        rows = self.conn.execute(
            # Positions, not names: the table has a MONTH column of its own.
            f"SELECT date_trunc('month', ORDERDATE)::DATE, sum(SALES) {source} GROUP BY 1 ORDER BY 1",
            params,
        ).fetchall()
        monthly = pl.DataFrame(rows, schema={"month": pl.Date, "SALES": pl.Float64}, orient="row")
        is_partial = pl.lit(False) if partial is None else pl.col("month") == partial
        return monthly.with_columns(is_partial.alias("partial"))

    def exports(self) -> pl.DataFrame | None:
        """The exports the table was built from (`<table>_exports`: rank, key, rows in, rows kept), oldest
        first; None when the table was not built from a folder of exports."""
        from sales_assets.warehouse.loading import exports_table

        name = exports_table(self.name)
        found = self.conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [name]
        ).fetchone()[0]
        if not found:
            return None
        rows = self.conn.execute(
            f"SELECT key, rows_in, rows_kept FROM {_identifier(name)} ORDER BY rank"
        ).fetchall()
        return pl.DataFrame(
            rows, schema={"export": pl.String, "rows in": pl.Int64, "rows kept": pl.Int64}, orient="row"
        )


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
                        f"lower_{level}:Q", scale=scale, title=y_title, axis=alt.Axis(format=DOLLAR_FORMAT)
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
                    y=alt.Y(f"{column}:Q", scale=scale, title=y_title, axis=alt.Axis(format=DOLLAR_FORMAT)),
                    tooltip=[
                        alt.Tooltip("month:T", format="%Y-%m"),
                        alt.Tooltip(f"{column}:Q", format=DOLLAR_FORMAT),
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
            f"RMSE ({CURRENCY})": [dollars(s.rmse) for s in scores],
            f"seasonal naive RMSE ({CURRENCY})": [dollars(s.seasonal_naive_rmse) for s in scores],
            f"difference ({CURRENCY})": [dollars(s.difference) for s in scores],
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
        {"measure": [name for name, _ in rows], "value": [readable_number(v) for _, v in rows]},
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
                dollars(c.selection.rmse) if c.selection else "" for c in candidates
            ],
            f"evaluation RMSE ({CURRENCY})": [
                dollars(c.evaluation_mean_rmse) if c.evaluation_mean_rmse is not None else ""
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


@dataclass(frozen=True)
class SalesFigures:
    """The sales section's figures for a choice of filters, from either source (the Parquet copy or the
    warehouse table): `headline(filters)`, `sales_by(column, filters)`, `partial` (of the unfiltered
    data) and `sales_by_month(partial_month_start, filters)`; filters are (product lines, countries,
    years)."""

    options: dict[str, list]
    headline: Callable[[tuple], dict[str, float | int]]
    sales_by: Callable[[str, tuple], pl.DataFrame]
    partial: tuple[dt.date, dt.date] | None
    sales_by_month: Callable[[dt.date | None, tuple], pl.DataFrame]


def parquet_figures(parquet_dir: Path) -> SalesFigures:
    sales = scan_sales(parquet_dir)
    return SalesFigures(
        options=filter_options(sales),
        headline=lambda chosen: headline(filter_sales(sales, *chosen)),
        sales_by=lambda column, chosen: sales_by(filter_sales(sales, *chosen), column),
        partial=partial_month(sales),
        sales_by_month=lambda start, chosen: sales_by_month(filter_sales(sales, *chosen), start),
    )


def warehouse_figures(sales: WarehouseSales) -> SalesFigures:
    return SalesFigures(
        options=sales.filter_options(),
        headline=lambda chosen: sales.headline(*chosen),
        sales_by=lambda column, chosen: sales.sales_by(column, *chosen),
        partial=sales.partial_month(),
        sales_by_month=lambda start, chosen: sales.sales_by_month(start, *chosen),
    )


def render_sales(parquet_dir: Path) -> None:
    """The sales section on the single CSV's cleaned Parquet copy."""
    _render_figures(
        parquet_figures(parquet_dir),
        lambda lines: (
            f"{lines:,} order lines from `{parquet_dir}`; amounts are SALES in US dollars ({CURRENCY})."
        ),
    )


def render_warehouse_sales(settings: Settings) -> None:
    """The sales section with a folder of exports: the warehouse's deduplicated table, read-only, with the
    exports it was built from named on the page."""
    path, table = settings.duckdb_path, settings.warehouse.table
    with duckdb.connect(str(path), read_only=True) as conn:
        sales = WarehouseSales(conn, table, where=path)
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
            else f" (folder of exports `{settings.raw_dir_path}`, {exports.height:,} export(s): one row per "
            "order line, from the newest export that has it)"
        )

        def source(lines: int) -> str:
            return (
                f"{lines:,} order lines from the warehouse table `{table}` in `{path}`{built_from}; amounts "
                f"are SALES in US dollars ({CURRENCY})."
            )

        _render_figures(warehouse_figures(sales), source)
        if exports is not None:
            with st.expander(f"Exports the table was built from ({exports.height:,}, oldest first)"):
                st.dataframe(exports, hide_index=True)


def _render_figures(figures: SalesFigures, source: Callable[[int], str]) -> None:
    options = figures.options
    with st.sidebar:
        st.header("Filters")
        product_lines = st.multiselect("Product line", options["PRODUCTLINE"])
        countries = st.multiselect("Country", options["COUNTRY"])
        years = st.multiselect("Year", options["YEAR"])
    chosen = (product_lines, countries, years)

    numbers = figures.headline(chosen)
    total, orders, customers, country_count = st.columns(4)
    total.metric(f"Total sales ({CURRENCY})", dollars(numbers["total_sales"]))
    orders.metric("Orders", f"{numbers['orders']:,}")
    customers.metric("Customers", f"{numbers['customers']:,}")
    country_count.metric("Countries", f"{numbers['countries']:,}")
    st.caption(source(numbers["order_lines"]))

    sales_title = f"Sales ({CURRENCY})"
    left, right = st.columns(2)
    with left:
        st.subheader("Sales by product line")
        by_line = figures.sales_by("PRODUCTLINE", chosen)
        st.altair_chart(
            bar_chart(by_line, "PRODUCTLINE", "SALES", sales_title, DOLLAR_FORMAT), width="stretch"
        )
    with right:
        st.subheader("Sales by country")
        by_country = figures.sales_by("COUNTRY", chosen)
        st.altair_chart(
            bar_chart(by_country, "COUNTRY", "SALES", sales_title, DOLLAR_FORMAT), width="stretch"
        )
    st.subheader("Sales by month")
    partial = figures.partial
    st.altair_chart(month_chart(figures.sales_by_month(partial and partial[0], chosen)), width="stretch")
    if partial:
        st.caption(
            f"{partial[0]:%B %Y} is a partial month (marked ▼): the data stops on {partial[1]:%Y-%m-%d},"
            " before the month's last day, so its total is not comparable with full months."
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
        st.table(table.with_columns(cs.float().map_elements(readable_number, return_dtype=pl.String)))

    st.header("SHAP importances")
    if not outputs["shap"].present:
        _missing_note(outputs["shap"])
    elif (shap := _read_or_report(ShapReport.read, outputs["shap"].path)) is not None:
        importances = shap_importances(shap)
        title = f"Mean |SHAP| ({CURRENCY} of predicted SALES)"
        st.altair_chart(bar_chart(importances, "feature", "importance", title, ",.0f"), width="stretch")


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
        st.table(coherent[1].with_columns(cs.float().map_elements(dollars, return_dtype=pl.String)))
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
