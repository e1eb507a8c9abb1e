"""What assets show in the Dagster UI: typed tables, captioned PNG plots, paths and timings.

Matplotlib is imported inside the functions that draw (`pyplot()`), so loading the code location stays
cheap; every asset gets its figures through `pyplot()` and shows them with `save_figure(..., caption=)`.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl

from sales_assets.io import write_bytes_atomic
from sales_assets.readable import readable_columns
from sales_serving.contract.formatting import Quantity, count, money, percent, round_share

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sales_assets.settings import Settings


def pyplot() -> Any:
    """`matplotlib.pyplot` on the non-interactive Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def format_thousands(value: float) -> str:
    """`1234567.8` -> `1,234,568`: the axis and label format of money and counts in plots."""
    return f"{value:,.0f}"


def thousands_formatter() -> Any:
    """A matplotlib tick formatter with thousands separators (`1,234,568`)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: format_thousands(value))


def markdown_table(frame: pl.DataFrame, max_rows: int = 20) -> str:
    """A GitHub-style Markdown table of the first `max_rows` rows, numbers written by `readable_columns`.

    For asset metadata prefer `table_metadata` (a typed table the UI sorts and sizes); this one is for
    Markdown documents such as the EDA report.
    """
    head = readable_columns(frame.head(max_rows))

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(head.columns) + " |",
        "| " + " | ".join("---" for _ in head.columns) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows:,} more rows not shown_")
    return "\n".join(lines)


def _table_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_temporal():
        return "date"
    return "string"


def table_metadata(
    frame: pl.DataFrame,
    *,
    max_rows: int = 50,
    quantities: Mapping[str, Quantity] | None = None,
    descriptions: dict[str, str] | None = None,
) -> dg.MetadataValue:
    """A typed table for the Dagster UI (`MetadataValue.table` with a schema), numbers as people read them.

    Args:
        frame: any Polars frame; the first `max_rows` rows are shown (the UI sorts and scrolls them).
        quantities: optional column -> `formatting.Quantity` where the name and description do not say it
            (see `column_quantity`).
        descriptions: optional column -> description (units), shown in the table header's tooltip.

    Returns:
        `dg.MetadataValue.table(records, schema)`: number cells are the `formatting` module's text
        (`3,516,980.00`, `0.667`, `2,823`; NaN and infinities empty), the schema keeps each column's number
        type; temporal and other values are strings.
    """
    descriptions = descriptions or {}
    head = frame.head(max_rows)
    columns = [
        dg.TableColumn(name=name, type=_table_type(dtype), description=descriptions.get(name))
        for name, dtype in head.schema.items()
    ]

    def cell(value: Any) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        return str(value)

    written = readable_columns(head, quantities, descriptions)
    records = [dg.TableRecord({k: cell(v) for k, v in row.items()}) for row in written.iter_rows(named=True)]
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(columns=columns))


def number_metadata(value: float | int, quantity: Quantity) -> dg.MetadataValue:
    """A standalone number of an asset's metadata (one not in a table), written by the one formatter as the
    tables write it (`table_metadata`).

    Dagster's UI writes int and float metadata as they are (`3516980`, `527.4912345`), so money and counts
    go as text: money `527.49` (USD to the cent, separators: `3,516,980.00`), counts `2,823`; a percentage
    `12.3%`. A share goes as a float rounded to three decimals (`0.667`), which the UI writes so and still
    charts across materialisations. Raises ValueError for another quantity (labels and other measures are
    shown as they are, not through this function)."""
    if quantity is Quantity.MONEY:
        return dg.MetadataValue.text(money(value))
    if quantity is Quantity.COUNT:
        return dg.MetadataValue.text(count(int(value)))
    if quantity is Quantity.PERCENT:
        return dg.MetadataValue.text(percent(value))
    if quantity is Quantity.SHARE:
        return dg.MetadataValue.float(round_share(float(value)))
    raise ValueError(f"number_metadata: {quantity} is not money, a count, a percentage or a share")


def shown_path(settings: Settings, path: Path | str) -> str:
    """`path` relative to SALES_DATA_DIR (`settings.root`) in POSIX form, e.g.
    `processed/rejects/sales_rejects.parquet`; a path outside it stays absolute. Logs and metadata name
    files this way so a path fits the UI's metadata table and reads the same on every machine."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(settings.root).as_posix()
    except ValueError:
        return resolved.as_posix()


def path_metadata(settings: Settings, path: Path | str) -> dg.MetadataValue:
    """A file or folder the asset wrote or read, as `MetadataValue.path` of `shown_path(settings, path)`:
    the one way every asset shows a path in its metadata."""
    return dg.MetadataValue.path(shown_path(settings, path))


def key_value_table(
    mapping: Mapping[str, Any], columns: tuple[str, str] = ("name", "value")
) -> dg.MetadataValue:
    """A flat dict (`{"encoding": "detected from the bytes", ...}` or `{"step": 1.234}`) as a two-column
    typed table (`table_metadata`) named `columns`, one row per key: it wraps and sorts in the UI where a
    JSON blob runs on one line. Values must share one type (all strings, or all numbers)."""
    frame = pl.DataFrame({columns[0]: list(mapping), columns[1]: list(mapping.values())}, strict=False)
    return table_metadata(frame, max_rows=max(len(mapping), 1))


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def save_figure(fig: Figure, path: Path, caption: str | None = None) -> dg.MetadataValue:
    """Write the figure as PNG (atomically) and return it as Markdown the UI renders inline, with
    `caption` (one line saying what the plot shows) above the picture."""
    png = figure_png(fig)
    write_bytes_atomic(path, png)
    return png_markdown(png, alt=path.stem, caption=caption)


def png_markdown(png: bytes, alt: str = "plot", caption: str | None = None) -> dg.MetadataValue:
    encoded = base64.b64encode(png).decode("ascii")
    head = f"**{caption}**\n\n" if caption else ""
    return dg.MetadataValue.md(f"{head}![{alt}](data:image/png;base64,{encoded})")


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


LEADERBOARD_LINK_TEXT = "MLflow leaderboard (model-training view)"


def leaderboard_link(url: str) -> dg.MetadataValue:
    """The MLflow leaderboard's address as a Markdown link with a short text: the address (~100
    characters, no break) would widen the asset page's metadata table past the window."""
    return dg.MetadataValue.md(f"[{LEADERBOARD_LINK_TEXT}]({url})")


def leaderboard_address(value: str | None) -> str | None:
    """The address inside `leaderboard_link`'s Markdown (a bare address, as earlier trainings recorded it,
    is returned as it is); None for None."""
    if value is None:
        return None
    prefix = f"[{LEADERBOARD_LINK_TEXT}]("
    return value[len(prefix) : -1] if value.startswith(prefix) and value.endswith(")") else value
