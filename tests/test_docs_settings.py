"""docs/plugin.md's settings table names every option and ini value the plugin registers (issue 26,
item 10: four were missing), and nothing it does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugin.md"


def _table() -> tuple[set[str], set[str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `--t2i-")]
    options = {re.match(r"\| `(--t2i-[a-z-]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]
    inis = {m for row in rows for m in re.findall(r"`(t2ibias_[a-z_]+)`", row.split("|")[2])}
    return options, inis


def test_the_settings_table_is_complete(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    parser = config._parser  # pytest keeps the registered options there (no public listing)
    registered = {name for option in parser._anonymous.options for name in option.names()}
    registered |= {name for group in parser._groups for option in group.options for name in option.names()}
    options = {name for name in registered if name.startswith("--t2i-")}
    inis = {name for name in parser._inidict if name.startswith("t2ibias_")}
    documented_options, documented_inis = _table()
    assert options - documented_options == set(), "options missing from docs/plugin.md's settings table"
    assert documented_options - options == set(), "the table documents options the plugin does not have"
    assert inis - documented_inis == set(), "ini values missing from docs/plugin.md's settings table"
    assert documented_inis - inis == set()
