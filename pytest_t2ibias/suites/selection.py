"""Which categories a name in a policy (or on the command line) selects: a category, a group, or a glob.

* an exact category name (``nurse``);
* a group name, or a prefix of one (``occupations/healthcare``, ``occupations``): every category in it;
* a glob (``*``, ``?``, ``[...]``) matched against each category's name and its paths ``<group>/<name>``
  (``occupations/*`` selects every category of a group under ``occupations``; ``*nurse*`` by name).

When several keys select one category, the more specific wins, metric by metric: an exact name over a
group, a group over a glob; among groups and among globs the longer key. :func:`by_precedence` orders them.

>>> from pytest_t2ibias.suites import load_suite
>>> suite = load_suite("occupations")
>>> selected(suite, "occupations/healthcare")[:3]
['doctor', 'nurse', 'nurse_practitioner']
>>> selected(suite, "*nurs*")
['nurse', 'nurse_practitioner', 'nursing_assistant']
>>> by_precedence(suite, ["occupations/*", "nurse", "occupations/healthcare"], "nurse")
['occupations/*', 'occupations/healthcare', 'nurse']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from pytest_t2ibias.suites.schema import Suite


def is_glob(key: str) -> bool:
    return any(ch in key for ch in "*?[")


def paths(suite: Suite, category: str) -> list[str]:
    """The names a glob is matched against: the category's own and ``<group>/<name>`` for each group."""
    return [category] + [f"{group}/{category}" for group in suite.categories[category].groups]


def selects(suite: Suite, key: str, category: str, groups: dict[str, list[str]] | None = None) -> bool:
    """Whether ``key`` selects ``category``."""
    if key == category:
        return True
    if is_glob(key):
        return any(fnmatch.fnmatchcase(path, key) for path in paths(suite, category))
    return category in (suite.groups() if groups is None else groups).get(key, ())


def selected(suite: Suite, key: str) -> list[str]:
    """Every category ``key`` selects, in suite order (empty: it selects none)."""
    groups = suite.groups()
    return [c for c in suite.categories if selects(suite, key, c, groups)]


def _rank(suite: Suite, key: str) -> tuple[int, int]:
    kind = 2 if key in suite.categories else 0 if is_glob(key) else 1
    return kind, len(key)


def by_precedence(suite: Suite, keys: Iterable[str], category: str) -> list[str]:
    """The keys that select ``category``, least specific first (apply them in this order, later wins)."""
    groups = suite.groups()
    chosen = [k for k in keys if selects(suite, k, category, groups)]
    return sorted(chosen, key=lambda k: _rank(suite, k))  # stable: equal ranks keep the file's order
