"""Every form of the derived features agrees with their one definition (`sales_serving.contract.derived`), on
generated rows and edge values: training's pandas columns, serving's batch and one-row columns and the ONNX
graph's request part. The forms are made from the definition; these properties catch a form that stops
following it (a wrong node, a float32 step, a lookup off by one, a rule not applied)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.ml.onnx_export import FEATURE_PREFIX, _request_part, onnx_feeds
from sales_assets.settings import MLSettings
from sales_serving.contract.derived import DERIVED_OPS
from sales_serving.features import FLOAT32_MAX, DerivedFeature, FeatureBuilder, RowError

SPEC = feature_spec(MLSettings())
DERIVED = {item["name"]: (DERIVED_OPS[item["op"]], tuple(item["inputs"])) for item in SPEC.derived}
NUMERIC_FIELDS = [field for field in SPEC.request_fields if field not in SPEC.categorical_request_fields]
DIVISORS = {field for op, inputs in DERIVED.values() for field in op.operands_with("positive", inputs)}
MONTHS = {field for op, inputs in DERIVED.values() for field in op.operands_with("month", inputs)}
# No example takes long, but a loaded CI machine must not fail one on time (no test asserts a duration).
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Within float32's range (what serving takes), with the edges: zero, negative zero, subnormal, the limit.
EDGE_NUMBERS = st.sampled_from(
    [0.0, -0.0, 5e-324, -5e-324, 1e-300, 1.0, -1.0, FLOAT32_MAX, -FLOAT32_MAX, 3.4e38]
)
NUMBERS = st.one_of(EDGE_NUMBERS, st.floats(-FLOAT32_MAX, FLOAT32_MAX, allow_nan=False, allow_subnormal=True))
POSITIVE = st.one_of(
    st.sampled_from([5e-324, 1e-300, 1e-30, 1.0, FLOAT32_MAX]),
    st.floats(0.0, FLOAT32_MAX, exclude_min=True, allow_subnormal=True),
)
MONTH_NUMBERS = st.integers(1, 12).map(float)


@st.composite
def valid_rows(draw):
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        row = {}
        for field in NUMERIC_FIELDS:
            strategy = MONTH_NUMBERS if field in MONTHS else POSITIVE if field in DIVISORS else NUMBERS
            row[field] = draw(strategy)
        row |= {"PRODUCTLINE": draw(st.sampled_from(["Ships", "Planes"])), "COUNTRY": "USA"}
        rows.append(row)
    return rows


def definition(row: dict, name: str) -> float | str:
    """The feature by its definition, on Python floats."""
    op, inputs = DERIVED[name]
    return op.scalar(*(row[field] for field in inputs))


def builder() -> FeatureBuilder:
    derived = [DerivedFeature(name, op.name, inputs) for name, (op, inputs) in DERIVED.items()]
    return FeatureBuilder(
        SPEC.request_fields, derived, SPEC.columns, {name: None for name in SPEC.categorical}
    )


@pytest.fixture(scope="module")
def onnx_request_part() -> ort.InferenceSession:
    model = _request_part(SPEC, [onnx.helper.make_opsetid("", 17)], onnx.IR_VERSION)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def same(actual, expected) -> bool:
    """Equal to the bit for numbers (NaN equal to NaN, 0.0 unequal to -0.0), equal for text."""
    if isinstance(expected, str):
        return actual == expected
    return np.array(actual, dtype=np.float64).tobytes() == np.array(expected, dtype=np.float64).tobytes()


def in_float32(row: dict, name: str | None = None) -> bool:
    """Whether the row's derived numbers (or the one named) are within float32's range, as serving requires."""
    names = list(DERIVED) if name is None else [name]
    return all(isinstance(value := definition(row, each), str) or abs(value) <= FLOAT32_MAX for each in names)


def first_refused_row(rows: list[dict]) -> int:
    """The batch checks one derived feature at a time over all rows: the first refusal is the first row of
    the first feature (in the bundle's order) that leaves float32's range."""
    return next(index for name in DERIVED for index, row in enumerate(rows) if not in_float32(row, name))


@PROPERTY
@given(rows=valid_rows())
def test_the_pandas_form_gives_the_definitions_values(rows):
    features, _ = build_feature_matrix(pd.DataFrame(rows), SPEC, require_target=False)
    for index, row in enumerate(rows):
        for name in DERIVED:
            assert same(features[name].iloc[index], definition(row, name)), (name, row)


@PROPERTY
@given(rows=valid_rows())
def test_the_batch_and_one_row_forms_give_the_definitions_values_or_refuse_past_float32(rows):
    serving = builder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for row in rows:
            if not in_float32(row):
                with pytest.raises(RowError):
                    serving.build([row])
                continue
            alone = serving.build([row]).row(0)
            for name in DERIVED:
                assert same(alone[name], definition(row, name)), (name, row)
        if not all(in_float32(row) for row in rows):
            with pytest.raises(RowError) as refused:
                serving.build(rows)
            assert refused.value.row == first_refused_row(rows)
            return
        batch = serving.build(rows)
    for index, row in enumerate(rows):
        for name in DERIVED:
            assert same(batch.columns[name][index], definition(row, name)), (name, row)


@PROPERTY
@given(rows=valid_rows())
def test_the_onnx_form_gives_the_definitions_values_as_float32(onnx_request_part, rows):
    outputs = onnx_request_part.run(None, onnx_feeds(pd.DataFrame(rows), SPEC))
    by_name = {
        output.name.removeprefix(FEATURE_PREFIX): values.ravel()
        for output, values in zip(onnx_request_part.get_outputs(), outputs, strict=True)
    }
    for index, row in enumerate(rows):
        for name in DERIVED:
            expected = definition(row, name)
            actual = by_name[name][index]
            if isinstance(expected, str):
                assert actual == expected, (name, row)
            else:
                with np.errstate(over="ignore"):
                    assert same(np.float64(actual), np.float64(np.float32(expected))), (name, row)


BROKEN = st.one_of(
    st.tuples(st.sampled_from(sorted(DIVISORS)), st.sampled_from([0.0, -0.0, -1.0, -5e-324, -FLOAT32_MAX])),
    st.tuples(st.sampled_from(sorted(MONTHS)), st.sampled_from([0.0, 13.0, -1.0, 1.5, 12.000001, math.nan])),
)


@PROPERTY
@given(rows=valid_rows(), broken=BROKEN, where=st.integers(0, 5))
def test_every_form_refuses_an_operand_that_breaks_its_ops_rule(rows, broken, where):
    field, value = broken
    where = min(where, len(rows) - 1)
    rows[where] = rows[where] | {field: value}
    with pytest.raises(ValueError, match=repr(field)):
        build_feature_matrix(pd.DataFrame(rows), SPEC, require_target=False)
    serving = builder()
    with pytest.raises(RowError) as alone:
        serving.build([rows[where]])
    assert alone.value.field == field
    if len(rows) > 1 and all(in_float32(row) for row in rows[:where]):
        with pytest.raises(RowError) as batched:
            serving.build(rows)
        assert (batched.value.row, batched.value.field) == (where, field)


@PROPERTY
@given(rows=valid_rows(), field=st.sampled_from(sorted(set(NUMERIC_FIELDS) - MONTHS)))
def test_a_missing_number_stays_missing_in_training_and_is_refused_by_serving(rows, field):
    rows[0] = rows[0] | {field: math.nan}
    features, _ = build_feature_matrix(pd.DataFrame(rows), SPEC, require_target=False)
    for name in DERIVED:
        assert same(features[name].iloc[0], definition(rows[0], name)), name
    with pytest.raises(RowError) as refused:
        builder().build([rows[0]])
    assert refused.value.field == field


def test_the_definition_itself():
    """The values every form is checked against (a change here is a change of the model's inputs)."""
    assert DERIVED_OPS["divide"].scalar(95.7, 95.0) == 95.7 / 95.0
    assert DERIVED_OPS["multiply"].scalar(30.0, 95.7) == 30.0 * 95.7
    assert DERIVED_OPS["copy"].scalar(2004.0) == 2004.0
    seasons = [DERIVED_OPS["season"].scalar(float(month)) for month in range(1, 13)]
    assert seasons == ["Winter"] * 2 + ["Spring"] * 3 + ["Summer"] * 3 + ["Autumn"] * 3 + ["Winter"]
    assert {name: op.operand_rules for name, op in DERIVED_OPS.items()} == {
        "copy": (None,),
        "divide": (None, "positive"),
        "multiply": (None, None),
        "season": ("month",),
    }
