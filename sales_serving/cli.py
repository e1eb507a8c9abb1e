"""`sales-predict`: score rows with the bundle the service would serve (CURRENT under the model directory).

--show-schema, --json '{...}', --json-file f.json (one object or a list), --csv in.csv --out out.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from sales_serving.contract.bundle import BundleError
from sales_serving.features import RowError
from sales_serving.loading import LoadedModel, load_current
from sales_serving.schema import SalesFeatures
from sales_serving.scoring import predict_many, predict_one
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


def score_json(model: LoadedModel, payload: Any, source: str) -> dict[str, Any]:
    rows = parse_rows(payload, source)
    try:
        if isinstance(payload, list):
            return predict_many(model, rows).model_dump(mode="json")
        return predict_one(model, rows[0]).model_dump(mode="json")
    except RowError as error:
        raise InputError(f"{source}: {error}") from error


def _csv_chunks(reader: csv.DictReader) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for record in reader:
        chunk.append((reader.line_num, record))
        if len(chunk) == CSV_CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_csv(model: LoadedModel, source: TextIO, out: TextIO, errors: TextIO) -> tuple[int, int]:
    """Writes every input row plus a prediction (or the reason it has none); returns (scored, rejected)."""
    reader = csv.DictReader(source)
    if not reader.fieldnames:
        raise InputError("CSV input is empty (expected a header line)")
    prediction_column = f"predicted_{model.metadata.target}"
    writer = csv.DictWriter(out, [*reader.fieldnames, prediction_column, "error"], extrasaction="ignore")
    writer.writeheader()
    scored = rejected = 0
    for chunk in _csv_chunks(reader):
        results: dict[int, tuple[str, str]] = {}
        valid: list[tuple[int, SalesFeatures]] = []
        for line, record in chunk:
            # Blank cells are missing values, so an optional column like DEALSIZE may be left empty.
            present = {
                key: value for key, value in record.items() if key is not None and value not in ("", None)
            }
            try:
                valid.append((line, SalesFeatures.model_validate_strings(present)))
            except ValidationError as error:
                results[line] = ("", describe_validation_error(error))
        while valid:
            try:
                response = predict_many(model, [row for _, row in valid])
            except RowError as error:
                line = valid.pop(error.row)[0]
                results[line] = ("", f"{error.field}: {error.message}")
                continue
            for (line, _), prediction in zip(valid, response.predictions, strict=True):
                results[line] = (repr(prediction), "")
            break
        for line, record in chunk:
            prediction, reason = results[line]
            if reason:
                rejected += 1
                print(f"line {line}: {reason}", file=errors)
            else:
                scored += 1
            writer.writerow({**record, prediction_column: prediction, "error": reason})
    return scored, rejected


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
    args = parser.parse_args(argv)
    if args.csv and not args.out:
        parser.error("--csv needs --out OUT.csv")

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
            print(json.dumps(score_json(model, _parse_json(args.json, "--json"), "--json"), indent=2))
        elif args.json_file is not None:
            text = _read_text(args.json_file)
            print(
                json.dumps(
                    score_json(model, _parse_json(text, str(args.json_file)), str(args.json_file)), indent=2
                )
            )
        else:
            with _open_csv(args.csv) as source, args.out.open("w", newline="", encoding="utf-8") as out:
                scored, rejected = score_csv(model, source, out, sys.stderr)
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


def _open_csv(path: Path) -> TextIO:
    try:
        return path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error}") from error


if __name__ == "__main__":
    sys.exit(main())
