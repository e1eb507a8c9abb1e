"""Derived-feature ops and row checks of FeatureBuilder, on plain dicts."""

from __future__ import annotations

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
