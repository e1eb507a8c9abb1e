"""The test run shows deprecations: pytest's warning filters ignore none by category, and each warning they
do ignore is named by its message with the reason written above it in pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_no_category_is_ignored_whole_and_each_ignore_has_a_reason():
    text = PYPROJECT.read_text(encoding="utf-8")
    filters = tomllib.loads(text)["tool"]["pytest"]["ini_options"]["filterwarnings"]
    lines = text.splitlines()
    for entry in filters:
        action, message, *_ = entry.split(":")
        if action != "ignore":
            continue
        assert message.strip(), f"{entry!r} ignores a whole category: name the warning by its message"
        [index] = [i for i, line in enumerate(lines) if line.strip().startswith(f'"{entry}"')]
        # Entries of one reason share the comment above the first of them.
        above = index - 1
        while lines[above].strip().startswith('"ignore:'):
            above -= 1
        assert lines[above].strip().startswith("#"), f"{entry!r} has no reason above it in pyproject.toml"
