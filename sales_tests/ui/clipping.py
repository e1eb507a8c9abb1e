"""What "clipped" means in the browser tests, measured on the rendered page (DevTools `Runtime.evaluate`).

An element counts when it is rendered (not hidden, not transparent as a chart's overlapping axis labels
are, at least 3 x 3 px, so screen-reader-only text is left out) and has text of its own (a direct, non-blank text node). It is clipped when any of these holds:

1. `ellipsis`: its text ends with an ellipsis (`…` or `...`), the mark a UI leaves where it cut a label
   (not on a button or menu item, where "Materialize…" means "opens a dialog");
2. `overflow`: it hides its own overflow (`overflow-x` other than `visible`, or `text-overflow: ellipsis`)
   and its content is wider than its box (`scrollWidth > clientWidth + 1`);
3. `cut-by-container`: its box runs more than 1 px past the left or right edge of the padding box of the
   nearest ancestor whose `overflow-x` is not `visible` (a cell or a panel that cuts it off, or a scroll
   area that hides part of a table until the reader scrolls sideways: a table that does not fit).

Only horizontal extent is measured: content below the fold of a vertical scroll area is not clipped.
Text drawn into a canvas (Vega-Lite charts) is not in the DOM; the dashboard's chart specs are tested for
untruncated labels instead (`labelLimit` 0).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sales_tests.ui.browser import HeadlessChromium

CLIPPED_TEXT_JS = r"""
((scopeSelector, ignoreSelector) => {
  const scope = document.querySelector(scopeSelector);
  if (!scope) return [{kind: "missing-scope", text: scopeSelector}];
  const clips = (el) => getComputedStyle(el).overflowX !== "visible";
  const rendered = (el) => {
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && style.display !== "none" && style.opacity !== "0"
      && box.width >= 3 && box.height >= 3;
  };
  const ownText = (el) =>
    [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join("").trim();
  const found = [];
  for (const el of scope.querySelectorAll("*")) {
    if (ignoreSelector && el.closest(ignoreSelector)) continue;
    const text = ownText(el);
    if (!text || !rendered(el)) continue;
    const what = {text: text.slice(0, 80), tag: el.tagName.toLowerCase()};
    if (/(\u2026|\.\.\.)$/.test(text) && !el.closest("button, [role=button], [role=menuitem]")) {
      found.push({kind: "ellipsis", ...what});
      continue;
    }
    const style = getComputedStyle(el);
    if ((clips(el) || style.textOverflow === "ellipsis") && el.scrollWidth > el.clientWidth + 1) {
      found.push({kind: "overflow", ...what, scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
      continue;
    }
    let container = el.parentElement;
    while (container && container !== document.documentElement && !clips(container)) {
      container = container.parentElement;
    }
    if (!container || container === document.documentElement || container === document.body) continue;
    const inner = el.getBoundingClientRect(), outer = container.getBoundingClientRect();
    const left = outer.left + container.clientLeft, right = left + container.clientWidth;
    if (inner.right > right + 1 || inner.left < left - 1) {
      found.push({kind: "cut-by-container", ...what, right: Math.round(inner.right), limit: Math.round(right)});
    }
  }
  return found;
})
"""


def clipped_text(
    browser: HeadlessChromium, session: str, scope: str = "body", ignore: str | None = None
) -> list[dict]:
    """Every clipped element (rule in the module docstring) inside the first element matching the CSS
    selector `scope`, leaving out those inside an element matching `ignore`; each as a dict with `kind`,
    `text` (its first 80 characters), `tag` and the measured widths."""
    call = f"{CLIPPED_TEXT_JS}({json.dumps(scope)}, {json.dumps(ignore)})"
    return browser.evaluate(session, call) or []
