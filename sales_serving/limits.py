"""Request limits shared by every scoring route: rows per call, unknown fields per row, and validating raw
rows (from the protocol routes) with the same SalesFeatures rules /predict applies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from sales_serving.errors import ServiceError, field_path, validation_failure
from sales_serving.schema import FieldError, SalesFeatures
from sales_serving.settings import ServingSettings

ROWS = TypeAdapter(list[SalesFeatures])


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
