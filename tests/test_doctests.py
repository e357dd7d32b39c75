"""The examples in the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = [
    "pytest_t2ibias",
    "pytest_t2ibias.errors",
    "pytest_t2ibias.text",
    "pytest_t2ibias.metrics.distribution",
    "pytest_t2ibias.metrics.presence",
    "pytest_t2ibias.metrics.association",
    "pytest_t2ibias.metrics.diversity",
    "pytest_t2ibias.metrics.composite",
    "pytest_t2ibias.annotate.captions",
    "pytest_t2ibias.generate.seeds",
    "pytest_t2ibias.generate.callable_adapter",
    "pytest_t2ibias.metrics.embedding",
    "pytest_t2ibias.generate.objects",
    "pytest_t2ibias.generate.fingerprint",
    "pytest_t2ibias.annotate.objects",
    "pytest_t2ibias.masking",
    "pytest_t2ibias.snapshot",
    "pytest_t2ibias.provenance",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0


DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_examples(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path.parents[1])  # examples use paths relative to the repository root
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
