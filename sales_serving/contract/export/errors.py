"""The reader's one error type: a message on one line naming the file, line, column, what was seen and the
setting that settles it."""

from __future__ import annotations

from pathlib import Path

# Where the ingest settings hold the reader's dialect (`IngestSettings.reading.dialect`).
SETTING_PREFIX = "SALES_INGEST__READING__DIALECT__"
MAX_SEEN = 40  # characters of an offending value quoted in a message


class ExportError(ValueError):
    """A file the reader cannot read right; the message names the file, line, column, what was seen and
    the setting that settles it, on one line."""


class NotCsvTextError(ExportError):
    """The file is empty or holds bytes no text encoding explains (a binary file)."""


class MissingColumnsError(ExportError):
    """The header lacks columns the caller requires."""


def cut(text: object) -> str:
    """`text` as a quoted snippet of at most MAX_SEEN characters."""
    value = str(text)
    return repr(value if len(value) <= MAX_SEEN else value[: MAX_SEEN - 3] + "...")


def export_error(
    path: Path,
    what: str,
    *,
    line: int | None = None,
    column: str | None = None,
    seen: object = None,
    setting: str | None = None,
    kind: type[ExportError] = ExportError,
) -> ExportError:
    """One-line error: `file: line N, column C: what (seen 'x'); set SETTING`."""
    where = ", ".join(p for p in (f"line {line}" if line else "", f"column {column}" if column else "") if p)
    text = f"{path}: {where + ': ' if where else ''}{what}"
    if seen is not None:
        text += f" (seen {cut(seen)})"
    if setting:
        text += f"; set {setting}"
    return kind(text)
