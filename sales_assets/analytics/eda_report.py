"""The EDA report: one Markdown page gathering the missing-value table, the descriptive statistics, the
IQR filter's steps and the plots, written beside the plots so its image links resolve."""

from __future__ import annotations

import polars as pl

from sales_assets.metadata import markdown_table


def eda_report_markdown(
    missing: pl.DataFrame,
    stats: pl.DataFrame,
    iqr_steps: pl.DataFrame,
    rows_kept: int,
    plot_files: list[str],
) -> str:
    """The report as Markdown; `plot_files` are file names relative to the report's folder."""
    rows_in = int(iqr_steps["rows_before"][0]) if iqr_steps.height else rows_kept
    raw_columns = missing.filter(pl.col("missing_before").is_not_null()).height
    with_missing = missing.filter(pl.col("missing_before") > 0).height
    sections = [
        "# Exploratory data analysis of the sales table",
        "## Missing values before and after cleaning",
        f"{with_missing} of the raw export's {raw_columns} columns had blanks; "
        f"{int(missing['missing_after'].fill_null(0).sum()):,} missing cells remain in the warehouse "
        "(columns cleaning dropped show no after count).",
        markdown_table(missing, max_rows=missing.height),
        "## Numeric descriptive statistics",
        markdown_table(stats, max_rows=stats.height),
        "## IQR outlier filter",
        f"Column by column, quartiles recomputed on the rows left: {rows_in:,} rows in, "
        f"{rows_kept:,} kept. The warehouse tables keep every row; this is a separate filtered view.",
        markdown_table(iqr_steps, max_rows=iqr_steps.height),
        "## Plots",
        *([f"![{name}]({name})" for name in plot_files] or ["The plots are on the `eda_plots` asset."]),
    ]
    return "\n\n".join(sections) + "\n"
