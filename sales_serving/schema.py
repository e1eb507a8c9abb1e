"""Request and response shapes of the service and the CLI: the seed's SalesFeatures row and what comes back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

EXAMPLE_ROW: dict[str, Any] = {
    "QUANTITYORDERED": 30,
    "PRICEEACH": 95.7,
    "ORDERLINENUMBER": 2,
    "MSRP": 95,
    "QTR_ID": 1,
    "MONTH_ID": 2,
    "YEAR_ID": 2003,
    "PRODUCTLINE": "Motorcycles",
    "COUNTRY": "USA",
    "DEALSIZE": "Small",
}


# The QTR_ID/MONTH_ID rule in JSON Schema terms, so /docs and schema-driven clients know it too.
QUARTER_MONTH_RULE = [
    {
        "properties": {
            "QTR_ID": {"const": quarter},
            "MONTH_ID": {"enum": [3 * quarter - 2, 3 * quarter - 1, 3 * quarter]},
        }
    }
    for quarter in (1, 2, 3, 4)
]


def _strict_number(value: Any, info: ValidationInfo) -> Any:
    """JSON `true` is not 1 and `"30"` is not 30: a numeric field takes a JSON number only.

    Text is parsed only where every value arrives as text (CSV rows via `model_validate_strings`)."""
    if isinstance(value, bool) or (isinstance(value, str) and info.mode != "string"):
        raise PydanticCustomError(
            "number_type",
            "expected a JSON number, got {value} (a {kind})",
            {"kind": "boolean" if isinstance(value, bool) else "string", "value": json.dumps(value)[:40]},
        )
    return value


StrictNumber = BeforeValidator(_strict_number)


class SalesFeatures(BaseModel):
    """One order line as the seed's API took it. Fields the served model does not use are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE_ROW], "anyOf": QUARTER_MONTH_RULE},
    )

    QUANTITYORDERED: Annotated[int, StrictNumber] = Field(
        gt=0, le=1_000_000, description="Units ordered, > 0."
    )
    PRICEEACH: Annotated[float, StrictNumber] = Field(
        ge=0.01, le=1_000_000, description="Unit price in USD, at least a cent (the export caps it at 100)."
    )
    ORDERLINENUMBER: Annotated[int, StrictNumber] = Field(
        ge=1, le=10_000, description="Position of the line in its order, from 1."
    )
    MSRP: Annotated[float, StrictNumber] = Field(
        ge=0.01, le=1_000_000, description="Manufacturer's suggested retail price, at least a cent."
    )
    QTR_ID: Annotated[int, StrictNumber] = Field(ge=1, le=4, description="Quarter 1-4; must match MONTH_ID.")
    MONTH_ID: Annotated[int, StrictNumber] = Field(ge=1, le=12, description="Month 1-12.")
    YEAR_ID: Annotated[int, StrictNumber] = Field(ge=1900, le=2100, description="Order year.")
    PRODUCTLINE: str = Field(min_length=1, max_length=200, description="e.g. Classic Cars, Motorcycles.")
    COUNTRY: str = Field(min_length=1, max_length=200, description="Customer country, e.g. USA, France.")
    DEALSIZE: str | None = Field(
        default=None,
        max_length=200,
        description="Small/Medium/Large. Derived from SALES itself, so leak-free models ignore it.",
    )

    @model_validator(mode="after")
    def _quarter_matches_month(self) -> SalesFeatures:
        expected = (self.MONTH_ID - 1) // 3 + 1
        if expected != self.QTR_ID:
            raise PydanticCustomError(
                "quarter_mismatch",
                "QTR_ID {qtr} does not match MONTH_ID {month}: expected QTR_ID {expected}",
                {"field": "QTR_ID", "qtr": self.QTR_ID, "month": self.MONTH_ID, "expected": expected},
            )
        return self


class BatchRequest(BaseModel):
    """Up to the configured batch limit (default 10,000) rows, scored in one call."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rows": [EXAMPLE_ROW, EXAMPLE_ROW | {"QUANTITYORDERED": 45}]}]}
    )

    rows: list[SalesFeatures] = Field(min_length=1, description="Rows in SalesFeatures shape.")


class ModelIdentity(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    currency: Literal["USD"] = "USD"
    target: str
    model_name: str
    model_version: str
    mlflow_run_id: str | None = Field(description="The MLflow run the registered model version points at.")
    backend: Literal["onnx", "joblib"]
    ignored_features: list[str] = Field(description="Request fields the served model does not use.")


class PredictionInterval(BaseModel):
    level: float = Field(description="Nominal coverage, e.g. 0.8 for an 80% interval.")
    lower: float = Field(description="Lower bound of SALES in USD.")
    upper: float = Field(description="Upper bound of SALES in USD.")


INTERVALS_DESCRIPTION = (
    "80% and 95% prediction intervals for SALES, calibrated on out-of-fold residuals (see /model "
    "`intervals` for the method and the coverage measured on held-out rows). Zero width where PRICEEACH is "
    "below the price cap (SALES is quantity x price there). Null when the served bundle carries no "
    "calibration; a warning then says so."
)


class PredictionResponse(ModelIdentity):
    prediction: float = Field(description="Predicted order-line SALES in USD.")
    intervals: list[PredictionInterval] | None = Field(description=INTERVALS_DESCRIPTION)
    features_used: dict[str, float | str] | None = Field(
        default=None,
        description="The model's inputs, derived features included; only with `?echo_features=true`.",
    )
    warnings: list[str]


class RowWarning(BaseModel):
    row: int | None = Field(description="0-based row the warning is about; null when it is about the model.")
    message: str


class BatchInterval(BaseModel):
    level: float = Field(description="Nominal coverage, e.g. 0.8 for an 80% interval.")
    lower: list[float] = Field(description="Lower bound of SALES per row, in request order.")
    upper: list[float] = Field(description="Upper bound of SALES per row, in request order.")


class BatchPredictionResponse(ModelIdentity):
    count: int
    predictions: list[float] = Field(description="One predicted SALES per row, in request order.")
    intervals: list[BatchInterval] | None = Field(description=INTERVALS_DESCRIPTION)
    warnings: list[RowWarning]


class HealthResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ok", "degraded", "no_model"]
    reason: str | None = Field(description="Why the status is not ok.")
    serving_policy: Literal["champion", "newest_candidate", "unknown"] | None = Field(
        description="Under which policy training moved CURRENT to the served bundle: `champion` (only a "
        "promoted model is served, the default) or `newest_candidate` (experiments); `unknown` for a bundle "
        "that does not record it."
    )
    promoted: bool | None = Field(description="Whether the served model won its promotion (MLflow alias).")
    model_name: str | None
    model_version: str | None
    mlflow_run_id: str | None = Field(description="The MLflow run the registered model version points at.")
    mlflow_training_run_id: str | None = Field(description="The parent MLflow run of the training.")
    mlflow_model_version: str | None
    dagster_run_id: str | None
    backend: Literal["onnx", "joblib"] | None
    leaky: bool | None = Field(description="True when the served model takes an input derived from SALES.")
    intervals: list[float] | None = Field(
        description="Interval levels the served model answers with; null when it carries no calibration."
    )
    features: list[str]
    loaded_at: datetime | None
    model_dir: str


class FieldError(BaseModel):
    field: str = Field(description="The offending field, e.g. QUANTITYORDERED or rows.3.MONTH_ID.")
    location: list[str | int]
    message: str
    type: str


class ErrorResponse(BaseModel):
    error: str = Field(description="A short machine-readable kind, e.g. validation_error.")
    message: str
    errors: list[FieldError] = []
