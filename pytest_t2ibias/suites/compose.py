"""Suite composition, resolved on the raw YAML data before the schema sees it.

Three top-level keys a suite file may have besides the schema's:

* ``extends: NAME_OR_PATH``: start from another suite (a built-in name, or a path relative to this
  file); this file's scalar fields (``name``, ``seed``, ...) win, its attributes replace the parent's of
  the same name, and its categories are added.
* ``include: [NAME_OR_PATH, ...]``: add the attributes and categories of other suites (an attribute both
  define must be defined the same way).
* ``expand: [...]``: categories made from prompt templates over a table of values::

      expand:
        - table: occupations-bls-2022.csv     # a CSV beside the suite, or a list of row mappings
          name: "{key}"                       # the category name
          templates: ["a photo of {article} {occupation}", "a portrait of {article} {occupation} at work"]
          category: {attribute: gender, groups: ["occupations/{sector}"], metrics: [...]}

  Every ``{column}`` in ``name``, ``templates`` and the strings of ``category`` is the row's value; a
  string that is one placeholder alone takes the value as it is (the schema then reads ``"87.9"`` as a
  number). ``where: {column: value}`` keeps only the rows that match.

A category name defined twice (in one file, or by two composed files), an ``extends`` / ``include`` loop,
and a placeholder naming no column are errors that name the file and the field.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_t2ibias._io import clip, short_repr
from pytest_t2ibias.errors import SuiteError

#: Top-level keys resolved here, never seen by the schema.
COMPOSE_KEYS = ("extends", "include", "expand")
#: The most rows a template table may have, and the most categories one suite may expand to.
MAX_ROWS = 10_000

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Origin:
    """Where a suite's data came from: ``label`` names it in errors, ``key`` identifies it for loops,
    ``read(name)`` reads a file beside it, and ``resolve(ref)`` loads another suite named from it."""

    label: str
    key: str
    read: Callable[[str], str]
    resolve: Callable[[str, Origin, tuple[str, ...]], tuple[dict[str, Any], Origin]] = field(repr=False)
    folder: Path | None = None  # where relative names resolve (None: inside the package)


@dataclass
class _Composed:
    data: dict[str, Any]
    where: dict[str, str]  # category -> label of the file that defined it


def compose(data: dict[str, Any], origin: Origin, stack: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` with ``extends``, ``include`` and ``expand`` resolved (a plain suite mapping)."""
    return _compose(data, origin, stack).data


def _compose(data: dict[str, Any], origin: Origin, stack: tuple[str, ...]) -> _Composed:
    stack = (*stack, origin.key)
    own_categories = dict(_mapping(data.get("categories"), origin, "categories"))
    where = dict.fromkeys(own_categories, origin.label)
    for name, category in _expand(data.get("expand"), origin).items():
        if name in own_categories:
            raise SuiteError(f"{origin.label}: field `expand`: category {name!r} is defined twice")
        own_categories[name], where[name] = category, origin.label

    scalars = {k: v for k, v in data.items() if k not in (*COMPOSE_KEYS, "categories", "attributes")}
    result = _Composed({"attributes": {}, "categories": {}}, {})
    parent_ref = data.get("extends")
    if parent_ref is not None:
        if not isinstance(parent_ref, str):
            raise SuiteError(
                f"{origin.label}: field `extends`: must be a suite name or path, got {short_repr(parent_ref)}"
            )
        parent = _load_other(parent_ref, origin, stack, "extends")
        result.data.update({k: v for k, v in parent.data.items() if k not in ("categories", "attributes")})
        result.data["attributes"].update(parent.data["attributes"])
        _add_categories(result, parent.data["categories"], parent.where, origin, "extends")
    result.data.update(scalars)
    result.data["attributes"].update(_mapping(data.get("attributes"), origin, "attributes"))

    includes = data.get("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SuiteError(
            f"{origin.label}: field `include`: must be a list of suite names or paths, got {short_repr(includes)}"
        )
    for index, ref in enumerate(includes):
        other = _load_other(ref, origin, stack, f"include[{index}]")
        attributes = result.data["attributes"]
        for aname, attribute in other.data["attributes"].items():
            if aname in attributes and attributes[aname] != attribute:
                raise SuiteError(
                    f"{origin.label}: field `include[{index}]`: attribute {aname!r} of {ref!r} differs from the "
                    "one already defined (an included suite must define a shared attribute the same way)"
                )
            attributes[aname] = attribute
        _add_categories(result, other.data["categories"], other.where, origin, f"include[{index}]")
    _add_categories(result, own_categories, where, origin, "categories")
    return result


def _mapping(value: Any, origin: Origin, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SuiteError(f"{origin.label}: field `{name}`: must be a mapping, got {type(value).__name__}")
    return value


def _add_categories(
    into: _Composed, categories: Mapping[str, Any], where: Mapping[str, str], origin: Origin, fieldname: str
) -> None:
    for name, category in categories.items():
        if name in into.data["categories"]:
            raise SuiteError(
                f"{origin.label}: field `{fieldname}`: category {name!r} is defined twice "
                f"(in {into.where[name]} and in {where.get(name, origin.label)})"
            )
        into.data["categories"][name] = category
        into.where[name] = where.get(name, origin.label)


def _load_other(ref: str, origin: Origin, stack: tuple[str, ...], fieldname: str) -> _Composed:
    data, other = origin.resolve(ref, origin, stack)
    if other.key in stack:
        loop = " -> ".join([*stack[stack.index(other.key) :], other.key])
        raise SuiteError(f"{origin.label}: field `{fieldname}`: {ref!r} leads back to itself ({loop})")
    return _compose(data, other, stack)


# -- templates over a table ------------------------------------------------------------------------------


def _expand(blocks: Any, origin: Origin) -> dict[str, Any]:
    if blocks is None:
        return {}
    if not isinstance(blocks, list):
        raise SuiteError(f"{origin.label}: field `expand`: must be a list of blocks, got {type(blocks).__name__}")
    out: dict[str, Any] = {}
    for index, block in enumerate(blocks):
        where = f"expand[{index}]"
        if not isinstance(block, dict):
            raise SuiteError(f"{origin.label}: field `{where}`: must be a mapping, got {type(block).__name__}")
        unknown = sorted(set(block) - {"table", "name", "templates", "category", "where"})
        if unknown:
            raise SuiteError(
                f"{origin.label}: field `{where}.{unknown[0]}`: unknown key; "
                "valid: table, name, templates, category, where"
            )
        for key in ("table", "name", "templates"):
            if key not in block:
                raise SuiteError(f"{origin.label}: field `{where}.{key}`: missing")
        templates = block["templates"]
        if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
            raise SuiteError(
                f"{origin.label}: field `{where}.templates`: must be a non-empty list of strings, "
                f"got {short_repr(templates)}"
            )
        category = _mapping(block.get("category"), origin, f"{where}.category")
        if "prompts" in category:
            raise SuiteError(f"{origin.label}: field `{where}.category.prompts`: the prompts come from `templates`")
        rows = _rows(block["table"], origin, f"{where}.table")
        selected = _mapping(block.get("where"), origin, f"{where}.where")
        for number, row in enumerate(rows):
            if any(str(row.get(k)) != str(v) for k, v in selected.items()):
                continue
            fill = _filler(row, origin, f"{where} (row {number + 1})")
            name = fill(block["name"], "name")
            if not isinstance(name, str) or not name:
                raise SuiteError(
                    f"{origin.label}: field `{where}.name`: must give a non-empty name, got {short_repr(name)}"
                )
            if name in out:
                raise SuiteError(f"{origin.label}: field `{where}.name`: category {name!r} is defined twice")
            out[name] = {
                "prompts": [fill(t, f"templates[{i}]") for i, t in enumerate(templates)],
                **fill(dict(category), "category"),
            }
    return out


def _rows(table: Any, origin: Origin, where: str) -> list[dict[str, Any]]:
    if isinstance(table, str):
        try:
            text = origin.read(table)
        except (OSError, UnicodeDecodeError) as err:
            raise SuiteError(
                f"{origin.label}: field `{where}`: cannot read table {table!r}: {clip(str(err))}"
            ) from None
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO("\n".join(lines))))
        bad = next((i for i, r in enumerate(rows) if None in r or None in r.values()), None)
        if bad is not None:
            raise SuiteError(
                f"{origin.label}: field `{where}`: row {bad + 1} of {table!r} has the wrong number of cells"
            )
    elif isinstance(table, list) and all(isinstance(r, dict) for r in table):
        rows = table
    else:
        raise SuiteError(f"{origin.label}: field `{where}`: a CSV file name or a list of rows, got {short_repr(table)}")
    if not rows:
        raise SuiteError(f"{origin.label}: field `{where}`: the table has no rows")
    if len(rows) > MAX_ROWS:
        raise SuiteError(f"{origin.label}: field `{where}`: more than {MAX_ROWS:,} rows")
    return rows


def _filler(row: Mapping[str, Any], origin: Origin, where: str) -> Callable[[Any, str], Any]:
    def fill(value: Any, path: str) -> Any:
        if isinstance(value, str):
            whole = _PLACEHOLDER.fullmatch(value)
            if whole:
                return _cell(whole[1], value, path)
            return _PLACEHOLDER.sub(lambda m: str(_cell(m[1], value, path)), value)
        if isinstance(value, list):
            return [fill(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {fill(k, path) if isinstance(k, str) else k: fill(v, f"{path}.{k}") for k, v in value.items()}
        return value

    def _cell(column: str, text: str, path: str) -> Any:
        if column not in row:
            raise SuiteError(
                f"{origin.label}: field `{where}.{path}`: {{{column}}} names no column of the table "
                f"(got {short_repr(text)}; columns: {sorted(row)})"
            )
        return row[column]

    return fill
