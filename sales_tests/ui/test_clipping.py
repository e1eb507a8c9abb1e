"""The clipping rule on a page built to hold one example of each kind, and of each look-alike that is not
clipped (a wrapped cell, a wide table in a wide enough box, hidden and screen-reader-only text)."""

from __future__ import annotations

import pytest

from sales_tests.ui.clipping import clipped_text

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><body style="font: 14px sans-serif; margin: 0">
<div id="scope">
  <div style="width: 80px; overflow: hidden; white-space: nowrap" id="a">QUANTITYORDERED_AND_MORE</div>
  <div style="width: 80px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis">PRICEEACH_PRICEEACH</div>
  <span>QUANTITYORDER\u2026</span>
  <button>Materialize\u2026</button>
  <div style="width: 200px; overflow-x: auto"><table><tr><td style="white-space: nowrap">
    champion_cv_rmse champion_cv_rmse champion_cv_rmse champion_cv_rmse</td></tr></table></div>
  <div style="width: 90px">wraps onto several lines without being cut</div>
  <div style="width: 900px; overflow-x: auto"><table><tr><td>fits</td><td>546.63</td></tr></table></div>
  <div style="display: none; width: 10px; overflow: hidden">hidden text that would overflow</div>
  <div style="width: 40px; overflow: hidden; white-space: nowrap; opacity: 0">transparent overlapping label</div>
  <span style="position: absolute; width: 1px; height: 1px; overflow: hidden">screen reader only label</span>
</div>
<div id="outside" style="width: 50px; overflow: hidden; white-space: nowrap">outside the scope entirely</div>
</body></html>"""


def test_each_kind_of_clipping_is_found_and_nothing_else(browser, tmp_path):
    page_file = tmp_path / "clipping.html"
    page_file.write_text(PAGE, encoding="utf-8")
    session = browser.open(page_file.as_uri())
    browser.wait_for_text(session, ["wraps onto several lines"])
    found = clipped_text(browser, session, scope="#scope")
    assert sorted((item["kind"], item["text"][:16]) for item in found) == [
        ("cut-by-container", "champion_cv_rmse"),
        ("ellipsis", "QUANTITYORDER\u2026"),
        ("overflow", "PRICEEACH_PRICEE"),
        ("overflow", "QUANTITYORDERED_"),
    ]
    ignoring = clipped_text(browser, session, scope="#scope", ignore="#a, table, span")
    assert [(item["kind"], item["text"]) for item in ignoring] == [("overflow", "PRICEEACH_PRICEEACH")]
    assert clipped_text(browser, session, scope="#nowhere") == [{"kind": "missing-scope", "text": "#nowhere"}]
