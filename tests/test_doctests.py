"""The examples in the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pytest_t2ibias.text",
    "pytest_t2ibias.metrics.distribution",
    "pytest_t2ibias.metrics.presence",
    "pytest_t2ibias.metrics.association",
    "pytest_t2ibias.metrics.diversity",
    "pytest_t2ibias.metrics.composite",
    "pytest_t2ibias.annotate.captions",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
