"""What assets show in the Dagster UI: Markdown tables, embedded PNG plots, paths and timings."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sales_assets.io import write_bytes_atomic  # noqa: E402

THOUSANDS = FuncFormatter(lambda value, _: f"{value:,.0f}")
# Whole numbers in these columns are labels (2004, 10107), not quantities: no thousands separators.
_LABEL_SUFFIXES = ("YEAR", "MONTH", "_ID", "NUMBER")


def markdown_table(frame: pl.DataFrame, max_rows: int = 20, float_digits: int = 2) -> str:
    """A GitHub-style Markdown table of the first `max_rows` rows, numbers with thousands separators."""
    head = frame.head(max_rows)

    def cell(value: Any, column: str) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:,.{float_digits}f}"
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not column.upper().endswith(_LABEL_SUFFIXES)
        ):
            return f"{value:,}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(head.columns) + " |",
        "| " + " | ".join("---" for _ in head.columns) + " |",
    ]
    lines += [
        "| " + " | ".join(cell(v, c) for v, c in zip(row, head.columns, strict=True)) + " |"
        for row in head.iter_rows()
    ]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows:,} more rows not shown_")
    return "\n".join(lines)


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: Figure, path: Path) -> dg.MetadataValue:
    """Write the figure as PNG (atomically) and return it as Markdown the UI renders inline."""
    png = figure_png(fig)
    write_bytes_atomic(path, png)
    return png_markdown(png, alt=path.stem)


def png_markdown(png: bytes, alt: str = "plot") -> dg.MetadataValue:
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


@contextmanager
def timed(log: Any, label: str) -> Iterator[dict[str, float]]:
    """Log `label` with its duration; the yielded dict gets `seconds` for the asset's metadata."""
    record: dict[str, float] = {}
    start = time.perf_counter()
    log.info(f"{label}: started")
    try:
        yield record
    finally:
        record["seconds"] = round(time.perf_counter() - start, 3)
        log.info(f"{label}: {record['seconds']:.2f}s")
