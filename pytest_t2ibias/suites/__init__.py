"""Prompt suites: YAML data validated by a pydantic schema."""

from pytest_t2ibias.suites.loader import SuiteError, builtin_suites, load_suite, parse_suite
from pytest_t2ibias.suites.schema import TERM_LISTS, Attribute, Category, Group, Parity, Reference, Suite

__all__ = [
    "TERM_LISTS",
    "Attribute",
    "Category",
    "Group",
    "Parity",
    "Reference",
    "Suite",
    "SuiteError",
    "builtin_suites",
    "load_suite",
    "parse_suite",
]
