"""`sales-predict`: score rows with the bundle the service would serve (CURRENT under the model directory).

--show-schema, --json '{...}', --json-file f.json (one object or a list), --csv in.csv --out out.csv.
Amounts (the prediction and its interval bounds, USD) are to the cent; `--precision full` gives the model's
own floats, as the API's `?precision=full` does (`sales_serving.precision`).
A CSV is read by the one export reader (`sales_serving.contract.export`: encoding, delimiter, decimal mark,
thousands separator detected, strict numbers); --out is written atomically, never over --csv, through the
one CSV writer (`sales_serving.contract.csv_out`: a cell, header cells too, that a spreadsheet would run as
a formula is prefixed with an apostrophe), with each row's warnings in a `warnings` column.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import polars as pl
from pydantic import ValidationError

from sales_serving.contract.bundle import BundleError
from sales_serving.contract.csv_out import NumberText, SafeCsvWriter
from sales_serving.contract.export import (
    LINE,
    SETTING_PREFIX,
    Dialect,
    ExportDialect,
    ExportError,
    ExportLayout,
    ExportReading,
    integer_value,
    number_reason,
    number_value,
    open_export,
)
from sales_serving.contract.publish import published_file
from sales_serving.features import RowError
from sales_serving.loading import LoadedModel, load_current
from sales_serving.precision import PRECISIONS, Precision, amount_cell, rounded_batch, rounded_payload
from sales_serving.schema import SalesFeatures
from sales_serving.scoring import model_warnings, predict_many, predict_one
from sales_serving.served_model import HOW_TO_TRAIN
from sales_serving.settings import ServingSettings

CSV_CHUNK_ROWS = 10_000


class InputError(Exception):
    """Input the CLI cannot score; the message says where and what was expected."""


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        if "field" in item.get("ctx", {}):
            location.append(item["ctx"]["field"])
        problems.append(f"{'.'.join(location) or 'row'}: {item['msg']}")
    return "; ".join(problems)


def load_served_model(settings: ServingSettings) -> LoadedModel:
    return load_current(settings.model_dir, settings.serving_backend)


def parse_rows(payload: Any, source: str) -> list[SalesFeatures]:
    items = payload if isinstance(payload, list) else [payload]
    rows = []
    for index, item in enumerate(items):
        try:
            rows.append(SalesFeatures.model_validate(item))
        except ValidationError as error:
            where = f"{source} item {index}" if isinstance(payload, list) else source
            raise InputError(f"{where}: {describe_validation_error(error)}") from error
    if not rows:
        raise InputError(f"{source}: no rows to score")
    return rows


def score_json(
    model: LoadedModel, payload: Any, source: str, precision: Precision = "cents"
) -> dict[str, Any]:
    """The API's answer to `payload` (one row: /predict's; a list: /predict/batch's), amounts to the cent
    unless `precision` is `full`. Raises InputError naming `source` and the row."""
    rows = parse_rows(payload, source)
    try:
        if isinstance(payload, list):
            return rounded_batch(predict_many(model, rows), precision).model_dump(mode="json")
        return rounded_payload(predict_one(model, rows[0]).model_dump(mode="json"), precision)
    except RowError as error:
        raise InputError(f"{source}: {error}") from error


def csv_layout() -> ExportLayout:
    """The request fields as an export layout: the columns a scoring CSV must (or may) carry."""
    fields = SalesFeatures.model_fields
    return ExportLayout(
        columns=tuple(fields),
        required=tuple(name for name, spec in fields.items() if spec.is_required()),
        integer_columns=tuple(name for name, spec in fields.items() if spec.annotation is int),
        number_columns=tuple(name for name, spec in fields.items() if spec.annotation is float),
    )


# The reader names its settings; sales-predict takes the same dialect parts as flags.
DIALECT_FLAGS = {
    "ENCODING": "--encoding",
    "DELIMITER": "--delimiter",
    "DECIMAL_MARK": "--decimal-mark",
    "THOUSANDS_SEPARATOR": "--thousands-separator",
}


def cli_advice(message: str) -> str:
    """`message` with each dialect setting it names (`SALES_INGEST__READING__DIALECT__DECIMAL_MARK`, or
    a bare `THOUSANDS_SEPARATOR` after one) spelled as the sales-predict flag that sets it."""
    pattern = rf"(?:{re.escape(SETTING_PREFIX)}|\b)({'|'.join(DIALECT_FLAGS)})\b"
    return re.sub(pattern, lambda m: DIALECT_FLAGS[m.group(1)], message)


def interval_columns(model: LoadedModel) -> list[str]:
    """The scored CSV's interval columns, in the order of the levels the bundle is calibrated for:
    `SALES_lower_80`, `SALES_upper_80`, `SALES_lower_95`, `SALES_upper_95` (USD); none without calibration."""
    if model.intervals is None:
        return []
    target = model.metadata.target
    return [
        f"{target}_{side}_{round(level * 100):g}"
        for level in model.intervals.levels
        for side in ("lower", "upper")
    ]


def score_csv(
    model: LoadedModel,
    path: Path,
    out: TextIO,
    errors: TextIO,
    reading: ExportReading,
    precision: Precision = "cents",
) -> tuple[int, int]:
    """Read `path` through the one export reader (any dialect it knows), write every record plus a
    prediction and its interval bounds (USD to the cent, `3208.95`, unless `precision` is `full`; or the
    reason it has none) and the row's warnings, as `--json` gives them, to `out` through the one CSV writer (`SafeCsvWriter`: no cell, header included, runs as a formula); the
    model's own warnings go to `errors` once. Malformed lines are reported and written with their text in
    the error. Returns (scored, rejected)."""
    layout = csv_layout()
    prediction_column = f"predicted_{model.metadata.target}"
    bound_columns = interval_columns(model)
    with tempfile.TemporaryDirectory(prefix="sales-predict-") as work:
        try:
            export = open_export(path, layout, reading, Path(work))
            structure = export.structure()
        except ExportError as error:
            raise InputError(cli_advice(str(error))) from error
        dialect = export.dialect
        columns = [c for c in export.header.names if c not in export.header.unnamed]
        writer = SafeCsvWriter(out)
        writer.writerow([*columns, prediction_column, *bound_columns, "error", "warnings"])
        for message in model_warnings(model):
            print(f"warning: {message}", file=errors)
        rejected = 0
        for line, text, reason in structure.malformed.iter_rows():
            rejected += 1
            print(f"line {line}: {reason}", file=errors)
            blanks = [""] * (len(columns) + 1 + len(bound_columns))
            writer.writerow([*blanks, f"line {line}: {reason}: {text[:80]}", ""])
        numeric = [c for c in columns if c in layout.numeric]
        typed = [
            (integer_value(c, dialect) if c in layout.integer_columns else number_value(c, dialect)).alias(
                _parsed(c)
            )
            for c in numeric
        ]
        scored = 0
        frame = export.scan().with_columns(typed)
        try:
            for batch in frame.collect_batches(chunk_size=CSV_CHUNK_ROWS):
                scored_here, rejected_here = _score_batch(
                    model, batch, columns, numeric, dialect, writer, errors, precision
                )
                scored, rejected = scored + scored_here, rejected + rejected_here
        except pl.exceptions.PolarsError as error:
            # One line for the user; --out is not replaced (the caller writes it atomically).
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InputError(
                f"{path}: {type(error).__name__}: {first[:200]}; check the file or give "
                "--encoding/--delimiter/--decimal-mark"
            ) from error
    return scored, rejected


@dataclass(frozen=True)
class LineResult:
    """What one CSV line gets in the output: the prediction, the interval bounds in `interval_columns`'
    order, the reason it was not scored and its warnings (blanks where not applicable)."""

    prediction: str
    bounds: list[str]
    reason: str
    warnings: str


def _parsed(column: str) -> str:
    """The name of a numeric column's parsed value beside its text (this command's own, so no header can
    hold it by chance: the reader trims every header name, so none starts with a space)."""
    return f" parsed {column}"


def _validate_batch(
    batch: pl.DataFrame, numeric: list[str], dialect: Dialect, no_bounds: list[str]
) -> tuple[dict[int, LineResult], list[tuple[int, SalesFeatures]]]:
    """Step 1: each line's request fields as `SalesFeatures`, or the reason it has none (a cell that is no
    strict number, a field the request model refuses). Returns (rejected lines' results, valid rows)."""
    rejected: dict[int, LineResult] = {}
    valid: list[tuple[int, SalesFeatures]] = []
    fields = SalesFeatures.model_fields
    reasons = batch.select(
        LINE,
        *[
            number_reason(
                c, dialect, "whole number" if c in fields and fields[c].annotation is int else "number"
            ).alias(c)
            for c in numeric
        ],
    )
    for record, why in zip(batch.iter_rows(named=True), reasons.iter_rows(named=True), strict=True):
        line = record[LINE]
        not_numbers = [why[c] for c in numeric if record[c] is not None and record[_parsed(c)] is None]
        if not_numbers:
            rejected[line] = LineResult("", no_bounds, "; ".join(not_numbers), "")
            continue
        # Only the request's own fields are validated; other columns pass through to the output.
        present = {
            c: record[_parsed(c)] if c in numeric else record[c]
            for c in fields
            if c in record and record[c] is not None
        }
        try:
            valid.append((line, SalesFeatures.model_validate(present)))
        except ValidationError as error:
            rejected[line] = LineResult("", no_bounds, describe_validation_error(error), "")
    return rejected, valid


def _predict_valid(
    model: LoadedModel, valid: list[tuple[int, SalesFeatures]], no_bounds: list[str], precision: Precision
) -> dict[int, LineResult]:
    """Step 2: the valid rows scored in one call; a row the model refuses (RowError) is taken out with its
    reason and the rest scored again. Amounts are cells to the cent unless `precision` is `full`."""
    results: dict[int, LineResult] = {}
    valid = list(valid)
    while valid:
        try:
            response = predict_many(model, [row for _, row in valid])
        except RowError as error:
            line = valid.pop(error.row)[0]
            results[line] = LineResult("", no_bounds, f"{error.field}: {error.message}", "")
            continue
        bands = response.intervals or []
        row_warnings: dict[int, list[str]] = {}
        for warning in response.warnings:
            if warning.row is not None:
                row_warnings.setdefault(warning.row, []).append(warning.message)
        for index, ((line, _), prediction) in enumerate(zip(valid, response.predictions, strict=True)):
            bounds = [
                amount_cell(value, precision)
                for band in bands
                for value in (band.lower[index], band.upper[index])
            ]
            results[line] = LineResult(
                amount_cell(prediction, precision), bounds, "", "; ".join(row_warnings.get(index, []))
            )
        break
    return results


def _write_batch(
    batch: pl.DataFrame,
    columns: list[str],
    numeric: list[str],
    results: dict[int, LineResult],
    writer: Any,
    errors: TextIO,
) -> tuple[int, int]:
    """Step 3: every line of the batch with its result, in file order; each rejection's reason also goes to
    `errors`. Returns (scored, rejected)."""
    # Number cells are written trimmed, as the reader read them; one that parsed is a number, never
    # prefixed (`NumberText`), one that did not is text like any other.
    trimmed = batch.with_columns(pl.col(numeric).str.strip_chars())
    parsed = trimmed.select(pl.col(_parsed(c)).is_not_null().alias(c) for c in numeric)
    scored = rejected = 0
    for (line, *cells), is_number in zip(
        trimmed.select(LINE, *columns).iter_rows(), parsed.iter_rows(named=True), strict=True
    ):
        cells = [NumberText(v) if is_number.get(c) else v for c, v in zip(columns, cells, strict=True)]
        result = results[line]
        if result.reason:
            rejected += 1
            print(f"line {line}: {result.reason}", file=errors)
        else:
            scored += 1
        blanked = ("" if c is None else c for c in cells)
        writer.writerow([*blanked, result.prediction, *result.bounds, result.reason, result.warnings])
    return scored, rejected


def _score_batch(
    model: LoadedModel,
    batch: pl.DataFrame,
    columns: list[str],
    numeric: list[str],
    dialect: Dialect,
    writer: Any,
    errors: TextIO,
    precision: Precision,
) -> tuple[int, int]:
    """One batch of CSV lines: validate, predict, write. Returns (scored, rejected)."""
    no_bounds = [""] * (2 * len(model.intervals.levels) if model.intervals is not None else 0)
    results, valid = _validate_batch(batch, numeric, dialect, no_bounds)
    results |= _predict_valid(model, valid, no_bounds, precision)
    return _write_batch(batch, columns, numeric, results, writer, errors)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[TextIO]:
    """A text file beside `target` that replaces it in one rename only when the block succeeds; on any
    error the temp file goes and `target` is untouched (`sales_serving.contract.publish.published_file`)."""
    with published_file(target) as aside, open(aside, "w", newline="", encoding="utf-8") as handle:
        yield handle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sales-predict", description="Predict order-line SALES with the served model bundle."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--show-schema", action="store_true", help="print the request JSON schema and the model's features"
    )
    action.add_argument("--json", metavar="JSON", help="one row (or a list of rows) as a JSON string")
    action.add_argument(
        "--json-file", type=Path, metavar="FILE", help="a JSON file with one row or a list of rows"
    )
    action.add_argument(
        "--csv", type=Path, metavar="IN.csv", help="score every row of a CSV file (use with --out)"
    )
    parser.add_argument("--out", type=Path, metavar="OUT.csv", help="where --csv writes its scored rows")
    parser.add_argument(
        "--model-dir", type=Path, help="bundle directory holding CURRENT (default: from SALES_* settings)"
    )
    parser.add_argument(
        "--backend", choices=["auto", "onnx", "joblib"], help="force a backend (default: settings)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="cents",
        help="amounts (prediction, interval bounds; USD) to the cent (default) or the model's full floats, "
        "as the API's ?precision=",
    )
    dialect = parser.add_argument_group(
        "CSV dialect", "detected from the file unless given (see the README's 'What exports it reads')"
    )
    dialect.add_argument("--encoding", help="text encoding, e.g. utf-8, cp1252, cp850, utf-16")
    dialect.add_argument("--delimiter", choices=[",", ";", "tab", "|"], help="field delimiter")
    dialect.add_argument("--decimal-mark", choices=[".", ","], help="decimal mark of numbers")
    dialect.add_argument(
        "--thousands-separator", choices=[",", ".", "'", "space", "none"], help="thousands separator"
    )
    args = parser.parse_args(argv)
    if args.csv and not args.out:
        parser.error("--csv needs --out OUT.csv")
    if args.csv and _same_file(args.csv, args.out):
        parser.error(f"--out {args.out} is the input --csv: the scored rows would overwrite it")

    overrides: dict[str, Any] = {}
    if args.model_dir:
        overrides["serving_model_dir"] = args.model_dir
    if args.backend:
        overrides["serving_backend"] = args.backend
    settings = ServingSettings(**overrides)

    if args.show_schema:
        schema: dict[str, Any] = {"request": SalesFeatures.model_json_schema()}
        try:
            model = load_served_model(settings)
            schema["model"] = {
                "version": model.version,
                "request_fields": model.metadata.request_fields,
                "features": [spec.model_dump() for spec in model.metadata.features],
            }
        except BundleError as error:
            schema["model"] = f"no model loaded: {error}"
        print(json.dumps(schema, indent=2))
        return 0

    try:
        model = load_served_model(settings)
    except BundleError as error:
        print(f"sales-predict: {error}. {HOW_TO_TRAIN}", file=sys.stderr)
        return 2

    try:
        if args.json is not None:
            payload = _parse_json(args.json, "--json")
            print(json.dumps(score_json(model, payload, "--json", args.precision), indent=2))
        elif args.json_file is not None:
            source = str(args.json_file)
            payload = _parse_json(_read_text(args.json_file), source)
            print(json.dumps(score_json(model, payload, source, args.precision), indent=2))
        else:
            if not args.csv.is_file():
                raise InputError(f"{args.csv}: no such file")
            with atomic_output(args.out) as out:
                scored, rejected = score_csv(model, args.csv, out, sys.stderr, _reading(args), args.precision)
                if not scored:
                    # Raised inside the block: a run that scored nothing never replaces --out.
                    raise InputError(
                        f"{args.csv}: no row could be scored ({rejected} rejected, reasons above); "
                        f"{args.out} is left as it was"
                    )
            print(f"scored {scored} rows, rejected {rejected}; wrote {args.out}", file=sys.stderr)
            return 1 if rejected else 0
    except InputError as error:
        print(f"sales-predict: {error}", file=sys.stderr)
        return 1
    return 0


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{source}: not valid JSON: {error}") from error


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error}") from error


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def _reading(args: argparse.Namespace) -> ExportReading:
    """The reader's rules with the dialect parts given on the command line."""
    spelled = {"tab": "\t", "space": " ", "none": ""}
    given = {
        "encoding": args.encoding,
        "delimiter": spelled.get(args.delimiter, args.delimiter),
        "decimal_mark": args.decimal_mark,
        "thousands_separator": spelled.get(args.thousands_separator, args.thousands_separator),
    }
    return ExportReading(dialect=ExportDialect(**{k: v for k, v in given.items() if v is not None}))


if __name__ == "__main__":
    sys.exit(main())
