"""Request limits shared by every scoring route: the shape of a JSON body (keys per object, names per
`columns` list, nesting) checked before it is parsed into models, rows per call, unknown fields per row,
and validating raw rows (from the protocol routes) with the same SalesFeatures rules /predict applies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from sales_serving.errors import ServiceError, field_path, validation_failure
from sales_serving.schema import FieldError, SalesFeatures
from sales_serving.settings import ServingSettings

ROWS = TypeAdapter(list[SalesFeatures])
KEYS_SETTING = "SALES_SERVING_MAX_OBJECT_KEYS"


def check_json_shape(body: bytes, max_keys: int, max_depth: int) -> None:
    """ServiceError 413 when the JSON `body` has an object with more than `max_keys` keys, a `columns` list
    of more than `max_keys` names, or nesting deeper than `max_depth` (SALES_SERVING_MAX_OBJECT_KEYS,
    SALES_SERVING_MAX_JSON_DEPTH). A body whose byte counts already prove it inside the limits
    (`surely_within_shape`, three `bytes.count` scans) is not parsed; any other costs one orjson parse and one
    walk, linear in the body. A body that is not JSON passes (the route answers it as it always did)."""
    if surely_within_shape(body, max_keys, max_depth):
        return
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    check_document_shape(document, max_keys, max_depth)


def check_document_shape(document: Any, max_keys: int, max_depth: int) -> None:
    """`check_json_shape`'s walk over an already parsed JSON `document` (dict, list or scalar): ServiceError
    413 naming the first container found over a limit; scalars pass."""
    if not isinstance(document, dict | list):
        return
    # Only containers are queued: the scalars of a big batch cost one isinstance check each.
    pending: list[tuple[Any, int, tuple[str | int, ...]]] = [(document, 1, ())]
    while pending:
        value, depth, location = pending.pop()
        if depth > max_depth:
            _too_big(location, f"nesting deeper than {max_depth} levels", "SALES_SERVING_MAX_JSON_DEPTH")
        if isinstance(value, dict):
            if len(value) > max_keys:
                _too_big(location, f"an object with {len(value)} keys; at most {max_keys}", KEYS_SETTING)
            children = value.items()
        else:
            if location and location[-1] == "columns" and len(value) > max_keys:
                _too_big(location, f"{len(value)} columns; at most {max_keys}", KEYS_SETTING)
            children = enumerate(value)
        pending.extend(
            (child, depth + 1, (*location, key)) for key, child in children if isinstance(child, dict | list)
        )


def surely_within_shape(body: bytes, max_keys: int, max_depth: int) -> bool:
    """True when counting bytes proves `body` inside the shape limits without parsing it, False when only a
    parse can tell. Sound upper bounds, whatever the text: an object of n keys or a list of n items holds
    n - 1 commas, and a container at depth d (the document is depth 1) lies inside d opening brackets, so
    fewer than `max_keys` commas and at most `max_depth` `{`/`[` in the whole body (strings included, which
    only over-count) mean no container can be over either limit. A one-row /predict body (a dozen fields)
    passes here: the check then costs three C-level scans, not a parse."""
    if body.count(b",") >= max_keys:
        return False
    return body.count(b"{") + body.count(b"[") <= max_depth


def _too_big(location: tuple[str | int, ...], what: str, setting: str) -> None:
    where = ["body", *location]
    message = f"{field_path(where)}: {what} ({setting})"
    detail = FieldError(field=field_path(where), location=where, message=message, type="body_shape_too_large")
    raise ServiceError(413, "payload_too_large", message, [detail])


def check_batch_size(count: int, limit: int, field: str = "rows") -> None:
    """ServiceError 413 when a call carries more than `limit` rows (SALES_SERVING_BATCH_LIMIT)."""
    if count > limit:
        detail = FieldError(
            field=field,
            location=[field],
            message=f"at most {limit} rows per call (SALES_SERVING_BATCH_LIMIT), got {count}",
            type="too_long",
        )
        raise ServiceError(413, "batch_too_large", detail.message, [detail])


def check_unknown_fields(rows: Sequence[SalesFeatures], cap: int, prefix: Sequence[str | int] = ()) -> None:
    """ServiceError 422 naming the first row with more than `cap` fields SalesFeatures does not declare
    (SALES_SERVING_MAX_UNKNOWN_FIELDS): extra fields are accepted and ignored, but not without bound."""
    for number, row in enumerate(rows):
        extra = row.model_extra or {}
        if len(extra) > cap:
            location: list[str | int] = [*prefix, number] if prefix or len(rows) > 1 else ["body"]
            names = ", ".join(sorted(extra)[:5])
            message = (
                f"{len(extra)} unknown fields ({names}, ...); at most {cap} per row are accepted "
                "(SALES_SERVING_MAX_UNKNOWN_FIELDS)"
            )
            detail = FieldError(
                field=field_path(location), location=location, message=message, type="too_many_unknown_fields"
            )
            raise ServiceError(422, "validation_error", f"{detail.field}: {message}", [detail])


def validate_rows(
    raw: Sequence[Any], settings: ServingSettings, prefix: Sequence[str | int] = ("rows",)
) -> list[SalesFeatures]:
    """Raw row mappings -> SalesFeatures under the service's limits; ServiceError 413/422 naming row and field."""
    check_batch_size(len(raw), settings.serving_batch_limit, field_path(prefix) if prefix else "rows")
    try:
        rows = ROWS.validate_python(raw)
    except ValidationError as error:
        raise validation_failure(error.errors(), prefix) from error
    check_unknown_fields(rows, settings.serving_max_unknown_fields, prefix)
    return rows
