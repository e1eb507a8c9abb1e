"""Feature building for the sales regressor: which columns go in, and the derived features as pandas columns,
made from the bundle contract's one definition of each op (`sales_serving.contract.derived`), the definition
serving's and the ONNX graph's forms are made from too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from sales_assets.settings import MLSettings
from sales_serving.contract.derived import DERIVED_OPS

# Every feature a settings list may name that is not a raw column: name -> (op, inputs).
DERIVED_FEATURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "YEAR": ("copy", ("YEAR_ID",)),
    "MONTH": ("copy", ("MONTH_ID",)),
    "QUARTER": ("copy", ("QTR_ID",)),
    "SEASON": ("season", ("MONTH_ID",)),
    "PRICE_TO_MSRP_RATIO": ("divide", ("PRICEEACH", "MSRP")),
    "LINE_TOTAL_APPROX": ("multiply", ("QUANTITYORDERED", "PRICEEACH")),
}

# The unit price field and its cap define the two regimes of SALES = QUANTITYORDERED x unit price.
PRICE_FIELD = "PRICEEACH"

# Computed from the target (Small < 3,000 <= Medium < 7,000 <= Large), so it leaks the answer.
LEAKY_COLUMNS = ("DEALSIZE",)


@dataclass(frozen=True)
class FeatureSpec:
    """The model's inputs: raw request fields, derived features and pipeline columns, in order."""

    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def derived(self) -> list[dict]:
        return [
            {"name": name, "op": DERIVED_FEATURES[name][0], "inputs": list(DERIVED_FEATURES[name][1])}
            for name in DERIVED_FEATURES
            if name in self.columns
        ]

    @property
    def request_fields(self) -> list[str]:
        fields: list[str] = []
        for name in self.columns:
            inputs = DERIVED_FEATURES[name][1] if name in DERIVED_FEATURES else (name,)
            fields += [field for field in inputs if field not in fields]
        return fields

    @property
    def categorical_request_fields(self) -> list[str]:
        """Request fields that arrive as text: the raw categorical features (SEASON is derived from a month)."""
        return [field for field in self.request_fields if field in self.categorical]

    @property
    def leaky(self) -> bool:
        return any(column in LEAKY_COLUMNS for column in self.columns)


def feature_spec(ml: MLSettings) -> FeatureSpec:
    categorical = list(ml.categorical_features)
    if ml.include_dealsize and "DEALSIZE" not in categorical:
        categorical.append("DEALSIZE")
    return FeatureSpec(target=ml.target, numeric=tuple(ml.numeric_features), categorical=tuple(categorical))


def apply_derived_feature(frame: pd.DataFrame, op: str, inputs: list[str]) -> pd.Series:
    """One derived feature of `frame` (a Series on its index) by the contract's op named `op`: numbers as
    float64, lookups as str objects. Raises ValueError naming the column when an operand breaks the op's rule
    (a divisor not > 0, a month not a whole number 1..12); a missing (NaN) number stays missing, except as a
    month, which must be present."""
    definition = DERIVED_OPS.get(op)
    if definition is None:
        raise ValueError(f"unknown derived-feature op {op!r}; expected one of {sorted(DERIVED_OPS)}")
    operands = [frame[name].astype("float64") for name in inputs]
    for name, operand, rule in zip(inputs, operands, definition.operand_rules, strict=True):
        if rule == "positive" and (operand <= 0).any():
            raise ValueError(
                f"derived feature: column {name!r} must be > 0 to divide by it; "
                f"{int((operand <= 0).sum())} row(s) are not"
            )
        if rule == "month":
            bad = ~((operand >= 1) & (operand <= 12) & (operand == np.floor(operand)))
            if bad.any():
                raise ValueError(
                    f"derived feature: column {name!r} must hold months 1..12; {int(bad.sum())} do not"
                )
    if definition.is_lookup:
        labels = np.array(definition.labels, dtype=object)
        return pd.Series(labels[operands[0].to_numpy().astype(np.int64)], index=frame.index, dtype=object)
    return definition.arithmetic(*operands)


def to_pandas(frame: pd.DataFrame | pl.DataFrame) -> pd.DataFrame:
    return frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame


def build_feature_matrix(
    frame: pd.DataFrame | pl.DataFrame, spec: FeatureSpec, require_target: bool = True
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The pipeline input (exactly `spec.columns`, numerics float64, categoricals str) and the target.

    Raises KeyError naming every column the settings ask for that the data lacks.
    """
    data = to_pandas(frame)
    needed = spec.request_fields + ([spec.target] if require_target else [])
    missing = [column for column in needed if column not in data.columns]
    if missing:
        raise KeyError(
            f"build_feature_matrix: column(s) {missing} named by settings.ml are not in the data; "
            f"available: {sorted(map(str, data.columns))}"
        )
    features = pd.DataFrame(index=pd.RangeIndex(len(data)))
    raw = data.reset_index(drop=True)
    for name in spec.numeric:
        if name in DERIVED_FEATURES:
            op, inputs = DERIVED_FEATURES[name]
            features[name] = apply_derived_feature(raw, op, list(inputs)).to_numpy()
        else:
            features[name] = raw[name].astype("float64").to_numpy()
    for name in spec.categorical:
        if name in DERIVED_FEATURES:
            op, inputs = DERIVED_FEATURES[name]
            values = apply_derived_feature(raw, op, list(inputs))
        else:
            values = raw[name]
        features[name] = pd.Series(values.astype(str).to_numpy(), dtype=object)
    target = raw[spec.target].astype("float64").to_numpy() if require_target else None
    return features, target
