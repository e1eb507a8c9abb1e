"""Every number a person reads is written by `sales_serving.contract.formatting`: money to the cent with
separators, shares to three decimals, counts with separators, in the Dagster tables and the Markdown."""

from __future__ import annotations

import math

import dagster as dg
import polars as pl
import pytest

from sales_assets.metadata import key_value_table, markdown_table, number_metadata, table_metadata
from sales_assets.readable import column_quantity
from sales_serving.contract.formatting import (
    Quantity,
    format_quantity,
    money,
    money_number,
    round_money,
    round_share,
)


@pytest.mark.parametrize(
    ("value", "quantity", "written"),
    [
        (3516980.0, Quantity.MONEY, "3,516,980.00"),
        (3208.949951171875, Quantity.MONEY, "3,208.95"),
        (-12.5, Quantity.MONEY, "-12.50"),
        (-0.001, Quantity.MONEY, "0.00"),  # no "-0.00"
        (0.6666666666666666, Quantity.SHARE, "0.667"),
        (12.3456, Quantity.PERCENT, "12.3%"),
        (2823, Quantity.COUNT, "2,823"),
        (2004, Quantity.LABEL, "2004"),
        (546.6284911312105, Quantity.MEASURE, "546.6"),
        (1.23456789e-05, Quantity.MEASURE, "1.235e-05"),
        (1_234_567.891, Quantity.MEASURE, "1,234,568"),
        (None, Quantity.MONEY, ""),
        (math.nan, Quantity.SHARE, ""),
        (math.inf, Quantity.MONEY, ""),
        (True, Quantity.COUNT, "True"),
        ("ok", Quantity.MONEY, "ok"),
    ],
)
def test_each_quantity_is_written_to_its_meaning(value, quantity, written):
    assert format_quantity(value, quantity) == written


def test_money_with_symbol_and_rounded_number():
    assert money(10_032_628.849, symbol=True) == "$10,032,628.85"
    assert money(-12.5, symbol=True) == "-$12.50"
    assert round_money(3208.949951171875) == 3208.95
    # The CSV cell: to the cent, no separator, so a reader parses it back.
    assert money_number(3208.949951171875) == "3208.95" and money_number(1_234_567) == "1234567.00"
    assert math.isnan(round_money(math.nan))


@pytest.mark.parametrize(
    ("name", "dtype", "description", "quantity"),
    [
        ("total_sales", pl.Float64, "", Quantity.MONEY),
        ("rmse_sel", pl.Float64, "RMSE on the selection origins, USD", Quantity.MONEY),
        ("lower_95", pl.Float64, "", Quantity.MONEY),
        ("r2", pl.Float64, "", Quantity.SHARE),
        ("raw_pct", pl.Float64, "% of the raw CSV's rows", Quantity.PERCENT),
        ("seconds", pl.Float64, "", Quantity.MEASURE),
        ("rows", pl.Int64, "", Quantity.COUNT),
        ("YEAR", pl.Int32, "", Quantity.LABEL),
        ("ORDERNUMBER", pl.Int64, "", Quantity.LABEL),
        ("model", pl.String, "", None),
    ],
)
def test_a_column_quantity_comes_from_its_dtype_name_and_description(name, dtype, description, quantity):
    assert column_quantity(name, dtype, description) == quantity


def test_dagster_tables_show_cents_separators_and_three_digit_shares():
    frame = pl.DataFrame(
        {
            "model": ["gbr", "ridge"],
            "rmse": [3516980.0, 580.6666],
            "r2": [0.6666666666666666, math.nan],
            "rows": [2823, 1_000_000],
            "YEAR": [2004, 2005],
        }
    )
    table = table_metadata(frame, descriptions={"rmse": "CV RMSE, USD"})
    rows = [record.data for record in table.value.records]
    assert rows[0] == {"model": "gbr", "rmse": "3,516,980.00", "r2": "0.667", "rows": "2,823", "YEAR": "2004"}
    assert rows[1] == {"model": "ridge", "rmse": "580.67", "r2": "", "rows": "1,000,000", "YEAR": "2005"}
    assert [c.type for c in table.value.schema.columns] == ["string", "float", "float", "int", "int"]


def test_a_quantity_given_by_the_caller_wins_over_the_name():
    frame = pl.DataFrame({"ratio": [0.123456]})
    table = table_metadata(frame, quantities={"ratio": Quantity.SHARE})
    assert table.value.records[0].data == {"ratio": "0.123"}


def test_key_value_and_markdown_tables_use_the_same_writer():
    seconds = key_value_table({"read": 1.23456, "clean": 1234.5}, ("step", "seconds"))
    assert [r.data["seconds"] for r in seconds.value.records] == ["1.235", "1,234"]
    text = markdown_table(pl.DataFrame({"PRODUCTLINE": ["A|B"], "total_sales": [1234.5], "YEAR": [2004]}))
    assert text.splitlines()[2] == "| A\\|B | 1,234.50 | 2004 |"


def test_a_share_shown_as_a_number_is_rounded_to_three_decimals():
    assert round_share(0.6666666666666666) == 0.667
    assert math.isnan(round_share(math.nan))


@pytest.mark.parametrize(
    ("value", "quantity", "shown"),
    [
        (3516980, Quantity.MONEY, dg.MetadataValue.text("3,516,980.00")),
        (527.4912345, Quantity.MONEY, dg.MetadataValue.text("527.49")),
        (2823, Quantity.COUNT, dg.MetadataValue.text("2,823")),
        (12.3456, Quantity.PERCENT, dg.MetadataValue.text("12.3%")),
        (0.6666666666666666, Quantity.SHARE, dg.MetadataValue.float(0.667)),
    ],
)
def test_a_standalone_metadata_number_is_written_as_the_tables_write_it(value, quantity, shown):
    assert number_metadata(value, quantity) == shown
    # The same text as a table cell of the same quantity (a share: the same three decimals).
    assert format_quantity(value, quantity) == str(shown.value) or quantity is Quantity.SHARE


def test_a_label_or_measure_is_not_a_standalone_number_to_format():
    with pytest.raises(ValueError, match="not money, a count"):
        number_metadata(2004, Quantity.LABEL)
