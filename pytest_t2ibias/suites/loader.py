"""Load a prompt suite by built-in name or by path, with errors that name file, field and value."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_t2ibias._io import clip, load_yaml, short_repr
from pytest_t2ibias.errors import SuiteError as SuiteError
from pytest_t2ibias.suites.compose import COMPOSE_KEYS, Origin, compose
from pytest_t2ibias.suites.schema import Suite


def builtin_suites() -> list[str]:
    """Names of the suites shipped with the package."""
    files = resources.files("pytest_t2ibias.suites")
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


_CROSS_REFERENCE = re.compile(r"^(?P<field>[\w.]+): (?P<message>.*)$", re.DOTALL)


#: How many schema errors one message lists before it says how many more there are.
_SHOW_ERRORS = 3


def format_validation_error(source: str, err: ValidationError) -> str:
    """One line: the first few schema errors of ``err``, each with its field and the (bounded) bad value.

    ``{source}: field `a.b`: message (got value); field `c`: ...; and 4 more errors``. Values are shown
    through :func:`~pytest_t2ibias._io.short_repr`, so a huge or alias-expanded input costs nothing.
    """
    parts = []
    errors = err.errors(include_url=False, include_context=False)
    for item in errors[:_SHOW_ERRORS]:
        message = clip(item["msg"].removeprefix("Value error, "), 500)
        field = clip(".".join(str(part) for part in item["loc"]), 120)
        cross = _CROSS_REFERENCE.match(message)
        if cross:
            # Model-level checks name their field (relative to the model) and quote the bad value.
            field = f"{field}.{cross['field']}" if field else cross["field"]
            parts.append(f"field `{field}`: {cross['message']}")
            continue
        parts.append(f"field `{field or '<top level>'}`: {message} (got {short_repr(item.get('input'), 80)})")
    more = len(errors) - _SHOW_ERRORS
    if more > 0:
        parts.append(f"and {more} more error{'s' if more > 1 else ''}")
    return f"{source}: " + "; ".join(parts)


def parse_suite(data: Any, source: str = "<suite>", base: Path | None = None) -> Suite:
    """Validate already-parsed suite data; ``source`` names it in errors.

    ``extends``, ``include`` and ``expand`` (:mod:`~pytest_t2ibias.suites.compose`) are resolved first,
    relative names against ``base`` (default: the current folder).
    """
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: a suite must be a mapping at the top level, got {type(data).__name__}")
    if any(key in data for key in COMPOSE_KEYS):
        data = compose(data, _folder_origin(source, base or Path.cwd(), key=f"data:{source}"))
    try:
        return Suite.model_validate(data)
    except ValidationError as err:
        raise SuiteError(format_validation_error(source, err)) from None


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a built-in suite (e.g. ``"t2i-biasbench"``) or a YAML file.

    Raises:
        SuiteError: the file is missing, is not YAML, or does not match the schema; the message
            names the file, the field and the value.
    """
    text = str(name_or_path)
    if text in builtin_suites():
        return _load_builtin(text)
    return _load_path(Path(text))


@functools.lru_cache(maxsize=8)
def _load_builtin(name: str) -> Suite:
    data, origin = _raw_builtin(name)
    return _validate(data, origin)


def _load_path(path: Path) -> Suite:
    data, origin = _raw_path(path)
    return _validate(data, origin)


def _validate(data: Any, origin: Origin) -> Suite:
    if isinstance(data, dict) and any(key in data for key in COMPOSE_KEYS):
        data = compose(data, origin)
    return parse_suite(data, origin.label)


def _raw_builtin(name: str) -> tuple[Any, Origin]:
    package = resources.files("pytest_t2ibias.suites")
    label = f"built-in suite {name!r}"
    text = package.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    origin = Origin(
        label=label,
        key=f"builtin:{name}",
        read=lambda file: package.joinpath(file).read_text(encoding="utf-8"),
        resolve=_resolve,
    )
    return load_yaml(text, label, SuiteError), origin


def _raw_path(path: Path) -> tuple[Any, Origin]:
    if not path.is_file():
        known = ", ".join(builtin_suites())
        raise SuiteError(f"{path}: no such suite file (built-in suites: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SuiteError(f"{path}: cannot read suite file: {err}") from None
    return load_yaml(text, str(path), SuiteError), _folder_origin(str(path), path.parent, key=str(path.resolve()))


def _folder_origin(label: str, folder: Path, key: str) -> Origin:
    return Origin(
        label=label,
        key=key,
        read=lambda file: (folder / file).read_text(encoding="utf-8"),
        resolve=_resolve,
        folder=folder,
    )


def _resolve(ref: str, origin: Origin, stack: tuple[str, ...]) -> tuple[dict[str, Any], Origin]:
    """The raw data of the suite ``ref`` names from ``origin``: a built-in name, else a path beside it."""
    if ref in builtin_suites():
        data, other = _raw_builtin(ref)
    elif origin.folder is None:
        raise SuiteError(f"{origin.label}: {ref!r} is not a built-in suite (built-in suites: {builtin_suites()})")
    else:
        data, other = _raw_path(origin.folder / ref)
    if not isinstance(data, dict):
        raise SuiteError(f"{other.label}: a suite must be a mapping at the top level, got {type(data).__name__}")
    return data, other
