"""Request rows -> model input columns, per the bundle contract's derived-feature ops (numpy only, no pandas).

The ops' batch (numpy columns) and one-row (Python floats) forms are made from their one definition,
`sales_serving.contract.derived.DERIVED_OPS`, as training's are; these columns feed both backends: ONNX takes
them as [n, 1] tensors, the joblib pipeline as a DataFrame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from sales_serving.contract.derived import DERIVED_OPS, DerivedOp

FLOAT32_MAX = float(np.finfo(np.float32).max)


class RowError(ValueError):
    """A row the model cannot score; names the row (0-based), the field and what was expected."""

    def __init__(self, row: int, field: str, message: str) -> None:
        super().__init__(f"row {row}: {field}: {message}")
        self.row = row
        self.field = field
        self.message = message


# The lookup ops' label tables as object arrays, indexed by a whole column of operands at once.
_LABEL_ARRAYS = {name: np.array(op.labels, dtype=object) for name, op in DERIVED_OPS.items() if op.is_lookup}


def apply_to_columns(op: DerivedOp, columns: Sequence[np.ndarray]) -> np.ndarray:
    """`op` on float64 columns (the operands already checked against the op's rules): the batch form."""
    if op.is_lookup:
        return _LABEL_ARRAYS[op.name][columns[0].astype(np.int64)]
    return op.arithmetic(*columns)


@dataclass(frozen=True)
class DerivedFeature:
    name: str
    op: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class FeatureColumns:
    """Model input columns (1-D, one value per row) in the bundle's feature order, plus per-row warnings,
    and the request fields' own columns (numbers as float64, text as objects) for an ONNX graph that derives
    the features itself."""

    columns: dict[str, np.ndarray]
    warnings: list[tuple[int, str]]
    inputs: dict[str, np.ndarray]

    def row(self, index: int) -> dict[str, float | str]:
        return {
            name: column[index].item() if column.dtype != object else column[index]
            for name, column in self.columns.items()
        }


class FeatureBuilder:
    """Turns request rows (mappings of raw field -> value) into the model's feature columns."""

    def __init__(
        self,
        request_fields: Sequence[str],
        derived: Sequence[DerivedFeature],
        feature_names: Sequence[str],
        categorical: Mapping[str, frozenset[str] | None],
    ) -> None:
        self.request_fields = tuple(request_fields)
        self.derived = tuple(derived)
        self.feature_names = tuple(feature_names)
        # Category vocabularies of categorical features (None: the bundle lists none, so no warning).
        self.categorical = dict(categorical)
        self.categorical_request_fields = tuple(f for f in self.request_fields if f in self.categorical)
        self.numeric_request_fields = tuple(f for f in self.request_fields if f not in self.categorical)
        steps = [(d, DERIVED_OPS[d.op]) for d in self.derived]
        self.month_inputs = frozenset(f for d, op in steps for f in op.operands_with("month", d.inputs))
        self.positive_divisors = frozenset(
            f for d, op in steps for f in op.operands_with("positive", d.inputs)
        )
        self._column_steps = tuple(steps)
        # (feature, the op's one-row form, whether its value is a number the model must take as float32)
        self._scalar_steps = tuple((d, op.scalar, not op.is_lookup) for d, op in steps)

    def build(self, rows: Sequence[Mapping[str, Any]]) -> FeatureColumns:
        """The model's columns for `rows` (raises RowError naming the first bad row and field). One row, the
        /predict case, is checked and derived on Python scalars: a numpy call on a one-element array costs
        more than its work (about 32 against 20 us in-process, BENCHMARKS.md "Serving"). Both paths apply the
        same checks in the same order with the same messages; test_features compares them."""
        if len(rows) == 1:
            return self._build_one(rows[0])
        return self._build_many(rows)

    def _build_one(self, row: Mapping[str, Any]) -> FeatureColumns:
        values: dict[str, Any] = {}
        for field in self.numeric_request_fields:
            try:
                number = float(row.get(field))
            except (TypeError, ValueError):
                number = math.nan
            if not abs(number) <= FLOAT32_MAX:
                self._raise_first_bad_number([row])
            values[field] = number
        for field in self.month_inputs:
            month = values[field]
            if not (1 <= month <= 12 and month == math.floor(month)):
                raise RowError(0, field, f"expected a month number 1..12, got {month!r}")
        for field in self.positive_divisors:
            if not values[field] > 0:
                raise RowError(0, field, f"expected a number > 0, got {values[field]!r}")
        columns: dict[str, np.ndarray] = {}
        for field in self.categorical_request_fields:
            columns[field] = self._text_column(field, [row.get(field)])
            values[field] = columns[field][0]
        for derived, scalar, numeric in self._scalar_steps:
            value = scalar(*(values[name] for name in derived.inputs))
            values[derived.name] = value
            if numeric and not abs(value) <= FLOAT32_MAX:
                operands = ", ".join(f"{name}={values[name]!r}" for name in derived.inputs)
                raise RowError(
                    0,
                    derived.inputs[-1],
                    f"{derived.name} ({derived.op} of {operands}) is {value!r}, outside the range the model takes",
                )
        # One array for every number, one-element views of it as the columns.
        numbers = [name for name, value in values.items() if not isinstance(value, str)]
        packed = np.array([values[name] for name in numbers], dtype=np.float64)
        for index, name in enumerate(numbers):
            columns[name] = packed[index : index + 1]
        for name, value in values.items():
            if name not in columns:
                columns[name] = np.array([value], dtype=object)
        features = {name: columns[name] for name in self.feature_names}
        inputs = {name: columns[name] for name in self.request_fields}
        return FeatureColumns(features, self._category_warnings(features), inputs)

    def _build_many(self, rows: Sequence[Mapping[str, Any]]) -> FeatureColumns:
        # One 2-D conversion and a handful of whole-array checks, whatever the number of rows.
        numeric = self._numeric_matrix(rows)
        values: dict[str, np.ndarray] = {
            field: numeric[:, index] for index, field in enumerate(self.numeric_request_fields)
        }
        self._check_request_ranges(values)
        for field in self.categorical_request_fields:
            values[field] = self._text_column(field, [row.get(field) for row in rows])
        for derived, op in self._column_steps:
            operands = [values[name] for name in derived.inputs]
            if op.is_lookup:
                values[derived.name] = apply_to_columns(op, operands)
                continue
            # A divisor > 0 but tiny sends a ratio past float64's range: numpy's overflow warning is silenced
            # and such rows are refused by the range check, as the one-row path refuses them.
            with np.errstate(over="ignore"):
                values[derived.name] = apply_to_columns(op, operands)
            self._refuse_out_of_range(derived, values, np.abs(values[derived.name]) <= FLOAT32_MAX)
        columns = {name: values[name] for name in self.feature_names}
        inputs = {name: values[name] for name in self.request_fields}
        return FeatureColumns(columns, self._category_warnings(columns), inputs)

    def _numeric_matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        fields = self.numeric_request_fields
        try:
            matrix = np.array([[row.get(field) for field in fields] for row in rows], dtype=np.float64)
        except (TypeError, ValueError):
            matrix = None
        if matrix is not None and (np.abs(matrix) <= FLOAT32_MAX).all():
            return matrix.reshape(len(rows), len(fields))
        self._raise_first_bad_number(rows)

    def _raise_first_bad_number(self, rows: Sequence[Mapping[str, Any]]) -> NoReturn:
        for index, row in enumerate(rows):
            for field in self.numeric_request_fields:
                if not _is_model_number(row.get(field)):
                    raise RowError(index, field, f"expected a finite number, got {row.get(field)!r}")
        raise AssertionError("unreachable: a row failed conversion but no value is bad")

    def _check_request_ranges(self, values: Mapping[str, np.ndarray]) -> None:
        for field in self.month_inputs:
            column = values[field]
            good = (column >= 1) & (column <= 12) & (column == np.floor(column))
            if not good.all():
                row = int(np.argmin(good))
                raise RowError(row, field, f"expected a month number 1..12, got {column[row].item()!r}")
        for field in self.positive_divisors:
            column = values[field]
            if not (column > 0).all():
                row = int(np.argmin(column > 0))
                raise RowError(row, field, f"expected a number > 0, got {column[row].item()!r}")

    @staticmethod
    def _refuse_out_of_range(
        derived: DerivedFeature, values: Mapping[str, np.ndarray], within: np.ndarray
    ) -> None:
        """RowError for the first row where `within` is False: the derived value leaves float32's range,
        which ONNX graphs usually take. The value named is the one-row path's (Python scalars)."""
        if within.all():
            return
        row = int(np.argmin(within))
        operands = {name: values[name][row].item() for name in derived.inputs}
        value = DERIVED_OPS[derived.op].scalar(*operands.values())
        shown = ", ".join(f"{name}={operand!r}" for name, operand in operands.items())
        raise RowError(
            row,
            derived.inputs[-1],
            f"{derived.name} ({derived.op} of {shown}) is {value!r}, outside the range the model takes",
        )

    @staticmethod
    def _text_column(field: str, raw: list[Any]) -> np.ndarray:
        for row, value in enumerate(raw):
            if not isinstance(value, str) or not value:
                raise RowError(row, field, f"expected a non-empty string, got {value!r}")
        column = np.empty(len(raw), dtype=object)
        column[:] = raw
        return column

    def _category_warnings(self, columns: Mapping[str, np.ndarray]) -> list[tuple[int, str]]:
        warnings: list[tuple[int, str]] = []
        for name, allowed in self.categorical.items():
            if allowed is None:
                continue
            for row, value in enumerate(columns[name]):
                if value not in allowed:
                    warnings.append(
                        (row, f"{name} {value!r} was not seen in training; the model treats it as unknown")
                    )
        return warnings


def _is_model_number(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and abs(float(value)) <= FLOAT32_MAX
    except (TypeError, ValueError):
        return False
