"""Derived-feature ops and row checks of FeatureBuilder, on plain dicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sales_serving.features import DerivedFeature, FeatureBuilder, RowError

DERIVED = [
    DerivedFeature("SEASON", "season", ("MONTH_ID",)),
    DerivedFeature("RATIO", "divide", ("PRICEEACH", "MSRP")),
    DerivedFeature("TOTAL", "multiply", ("QUANTITYORDERED", "PRICEEACH")),
    DerivedFeature("MONTH", "copy", ("MONTH_ID",)),
]
FEATURES = ["QUANTITYORDERED", "PRICEEACH", "COUNTRY", "SEASON", "RATIO", "TOTAL", "MONTH"]


@pytest.fixture
def builder() -> FeatureBuilder:
    return FeatureBuilder(
        ["QUANTITYORDERED", "PRICEEACH", "MSRP", "MONTH_ID", "COUNTRY"],
        DERIVED,
        FEATURES,
        {"COUNTRY": frozenset({"USA", "France"}), "SEASON": None},
    )


def row(**overrides: object) -> dict:
    return {"QUANTITYORDERED": 30, "PRICEEACH": 95.7, "MSRP": 95, "MONTH_ID": 2, "COUNTRY": "USA"} | overrides


def test_ops_compute_the_contract_values_in_feature_order(builder: FeatureBuilder) -> None:
    built = builder.build([row(), row(MONTH_ID=7, QUANTITYORDERED=10, PRICEEACH=50.0, MSRP=40.0)])
    assert list(built.columns) == FEATURES
    assert built.columns["SEASON"].tolist() == ["Winter", "Summer"]
    np.testing.assert_allclose(built.columns["RATIO"], [95.7 / 95, 1.25])
    np.testing.assert_allclose(built.columns["TOTAL"], [2871.0, 500.0])
    assert built.columns["MONTH"].dtype == np.float64
    assert built.columns["MONTH"].tolist() == [2.0, 7.0]
    assert built.warnings == []
    assert built.row(1)["SEASON"] == "Summer"
    assert built.row(0)["TOTAL"] == pytest.approx(2871.0)


@pytest.mark.parametrize(
    ("month", "season"),
    [
        (12, "Winter"),
        (1, "Winter"),
        (3, "Spring"),
        (5, "Spring"),
        (6, "Summer"),
        (8, "Summer"),
        (9, "Autumn"),
        (11, "Autumn"),
    ],
)
def test_season_boundaries(builder: FeatureBuilder, month: int, season: str) -> None:
    assert builder.build([row(MONTH_ID=month)]).columns["SEASON"][0] == season


def test_unseen_category_is_scored_with_a_warning_naming_row_and_value(builder: FeatureBuilder) -> None:
    built = builder.build([row(), row(COUNTRY="Atlantis")])
    assert built.warnings == [
        (1, "COUNTRY 'Atlantis' was not seen in training; the model treats it as unknown")
    ]


@pytest.mark.parametrize(
    ("bad", "field", "expected"),
    [
        ({"QUANTITYORDERED": None}, "QUANTITYORDERED", "finite number"),
        ({"PRICEEACH": "cheap"}, "PRICEEACH", "finite number"),
        ({"PRICEEACH": float("inf")}, "PRICEEACH", "finite number"),
        ({"MSRP": 0}, "MSRP", "> 0"),
        ({"MONTH_ID": 13}, "MONTH_ID", "1..12"),
        ({"MONTH_ID": 2.5}, "MONTH_ID", "1..12"),
        ({"COUNTRY": ""}, "COUNTRY", "non-empty string"),
        (
            {"PRICEEACH": 1e6, "MSRP": 1e-300},
            "MSRP",
            "RATIO (divide of PRICEEACH=1000000.0, MSRP=1e-300) is 1e+306",
        ),
        ({"COUNTRY": 7}, "COUNTRY", "non-empty string"),
    ],
)
def test_bad_values_raise_row_error_naming_row_and_field(
    builder: FeatureBuilder, bad: dict, field: str, expected: str
) -> None:
    with pytest.raises(RowError) as caught:
        builder.build([row(), row(**bad)])
    assert (caught.value.row, caught.value.field) == (1, field)
    assert expected in caught.value.message


def test_missing_request_field_is_named(builder: FeatureBuilder) -> None:
    incomplete = row()
    del incomplete["MSRP"]
    with pytest.raises(RowError, match="row 0: MSRP"):
        builder.build([incomplete])


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"QUANTITYORDERED": None}, "QUANTITYORDERED"),
        ({"PRICEEACH": "cheap"}, "PRICEEACH"),
        ({"MSRP": 0}, "MSRP"),
        ({"MONTH_ID": 13}, "MONTH_ID"),
        ({"COUNTRY": ""}, "COUNTRY"),
        ({"PRICEEACH": 1e6, "MSRP": 1e-300}, "MSRP"),
    ],
)
def test_one_row_is_refused_like_a_row_of_a_batch(builder: FeatureBuilder, bad: dict, field: str) -> None:
    with pytest.raises(RowError) as alone:
        builder.build([row(**bad)])
    with pytest.raises(RowError) as batched:
        builder.build([row(**bad), row()])
    assert (alone.value.row, alone.value.field) == (0, field)
    assert str(alone.value) == str(batched.value)


# Values of every kind a row can hold: ordinary, edge and out-of-range numbers, numbers as text, non-numbers.
NUMBERS = [30, 95.7, 0, -1.5, 1, 12, 13, 2.5, 1e-300, 3e38, 1e39, float("nan"), float("inf")]
NUMBERS += [None, "7", "x", True]
TEXTS = ["USA", "France", "Atlantis", "", None, 7]


def _outcome(build, rows: list[dict]) -> tuple:
    """What building `rows` gives, comparable across paths: the RowError, or every column (dtype and values
    as text, so NaN equals NaN), the warnings and the request-field columns."""
    try:
        built = build(rows)
    except RowError as error:
        return ("error", error.row, error.field, error.message)
    columns = {name: (str(column.dtype), repr(column.tolist())) for name, column in built.columns.items()}
    inputs = {name: (str(column.dtype), repr(column.tolist())) for name, column in built.inputs.items()}
    return ("built", columns, built.warnings, inputs, [built.row(0)])


def test_the_one_row_path_gives_what_the_batch_path_gives(builder: FeatureBuilder) -> None:
    """`build` takes a scalar path for one row; on 3,000 generated rows mixing every kind of value it must
    give the batch path's columns (to the bit), warnings and errors."""
    generator = np.random.default_rng(7)
    numeric = ["QUANTITYORDERED", "PRICEEACH", "MSRP", "MONTH_ID"]
    kinds = {"built": 0, "error": 0}
    for _ in range(3000):
        candidate = row()
        for field in generator.choice(numeric, size=generator.integers(0, 3), replace=False):
            candidate[str(field)] = NUMBERS[generator.integers(len(NUMBERS))]
        if generator.random() < 0.3:
            candidate["COUNTRY"] = TEXTS[generator.integers(len(TEXTS))]
        alone = _outcome(builder.build, [candidate])
        assert alone == _outcome(builder._build_many, [candidate]), candidate
        kinds[alone[0]] += 1
    assert min(kinds.values()) > 300, kinds  # both outcomes are exercised


# ---- a ratio past float64's range is refused before numpy divides (no "overflow in divide" warning), with
# the same message on the one-row and the batch path, whichever sign and row carries it


@pytest.mark.parametrize(
    ("price", "msrp", "shown"),
    [
        (3e38, 1e-300, "inf"),  # past float64's range: numpy warned "overflow in divide" here
        (-3e38, 5e-324, "-inf"),  # the smallest subnormal divisor, negative numerator
        (1e6, 1e-300, "1e+306"),  # within float64, past float32
        (3.4e38, 0.5, "6.8e+38"),  # just past float32
    ],
)
@pytest.mark.parametrize("position", [0, 2])
def test_a_ratio_out_of_range_is_refused_without_a_numpy_warning(builder, price, msrp, shown, position):
    bad = row(PRICEEACH=price, MSRP=msrp)
    rows = [row(), row(), row()]
    rows[position] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RowError) as batched:
            builder.build(rows)
        with pytest.raises(RowError) as alone:
            builder.build([bad])
    assert (batched.value.row, batched.value.field) == (position, "MSRP")
    assert f"RATIO (divide of PRICEEACH={price!r}, MSRP={msrp!r}) is {shown}," in batched.value.message
    assert alone.value.message == batched.value.message


def test_a_ratio_at_the_edge_of_float32_is_built(builder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built = builder.build([row(QUANTITYORDERED=1, PRICEEACH=3e38, MSRP=1.0), row()])
    assert built.columns["RATIO"][0] == 3e38
