"""Fixtures the reader's tests share: 200 generated order lines and the clean layer of their plain export
(comma, point, month-first, UTF-8), the reference every other spelling of the same rows must equal. A
module that needs other rows overrides `rows`."""

from __future__ import annotations

import polars as pl
import pytest

from sales_tests.contract.exports import clean, sample_rows, write_export


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return sample_rows(200)


@pytest.fixture(scope="module")
def reference(rows, tmp_path_factory) -> pl.DataFrame:
    """The clean layer of the plain export of `rows`."""
    work = tmp_path_factory.mktemp("reference")
    stats, frame, _ = clean(write_export(work / "plain.csv", rows), work / "out")
    assert (stats.rows_clean, stats.rows_rejected) == (len(rows), 0)
    return frame
