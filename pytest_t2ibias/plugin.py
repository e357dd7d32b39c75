"""The pytest plugin: options, marker and fixtures.

Loaded in every pytest run of an environment where the package is installed, so this module imports
nothing heavy: torch, diffusers, transformers and open_clip load only inside the fixtures that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_t2ibias.suites.schema import Suite


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("t2ibias", "text-to-image bias tests")
    group.addoption(
        "--t2i-suite",
        action="store",
        dest="t2ibias_suite",
        default=None,
        help="Prompt suite: a built-in name or a YAML path (default: t2i-biasbench).",
    )
    group.addoption(
        "--t2i-mode",
        action="store",
        dest="t2ibias_mode",
        choices=("paper", "strict"),
        default=None,
        help="Metric mode: strict (default, for gating) or paper (reproduces published numbers).",
    )
    parser.addini("t2ibias_suite", "Prompt suite: a built-in name or a YAML path.", default="t2i-biasbench")
    parser.addini("t2ibias_mode", "Metric mode: strict or paper.", default="strict")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "t2ibias(category=None, suite=None): a text-to-image bias test of one suite category."
    )


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(name)
    return str(value if value is not None else config.getini(name))


@pytest.fixture(scope="session")
def t2ibias_mode(pytestconfig: pytest.Config) -> str:
    """The metric mode of this run (``--t2i-mode`` or the ``t2ibias_mode`` ini value)."""
    return _setting(pytestconfig, "t2ibias_mode")


@pytest.fixture(scope="session")
def t2ibias_suite(pytestconfig: pytest.Config) -> Suite:
    """The prompt suite of this run (``--t2i-suite`` or the ``t2ibias_suite`` ini value)."""
    from pytest_t2ibias.suites import SuiteError, load_suite

    try:
        return load_suite(_setting(pytestconfig, "t2ibias_suite"))
    except SuiteError as err:
        pytest.fail(f"t2ibias: {err}", pytrace=False)
