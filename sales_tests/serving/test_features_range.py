"""A ratio past float64's range is refused before numpy divides (no "overflow in divide" warning), with the
same message on the one-row and the batch path, whichever sign and row carries it."""

from __future__ import annotations

import warnings

import pytest

from sales_serving.features import FeatureBuilder, RowError
from sales_tests.serving.test_features import DERIVED, FEATURES, row


@pytest.fixture
def builder() -> FeatureBuilder:
    return FeatureBuilder(
        ["QUANTITYORDERED", "PRICEEACH", "MSRP", "MONTH_ID", "COUNTRY"],
        DERIVED,
        FEATURES,
        {"COUNTRY": frozenset({"USA", "France"}), "SEASON": None},
    )


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
