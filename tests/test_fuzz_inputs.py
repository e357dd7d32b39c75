"""Mutation fuzzing of every input file (issue 10): suite YAML, policy YAML, baseline JSON, caption CSV and
precomputed labels (CSV and JSON).

Each case starts from a valid example input and applies a few mutations: byte, character, line and
token edits (numbers replaced by nan/inf/huge/negative values, strings emptied, delimiters swapped, YAML
syntax injected) and structured ones on the parsed data (types swapped, keys dropped or duplicated,
values shared so YAML writes aliases, containers nested). Every mutated input must either load or raise
the package's own error (:class:`~pytest_t2ibias.errors.T2IBiasError`) with a one-line message naming
the file; never another exception, never a hang (hypothesis' ``deadline`` bounds each case).

Runs are reproducible (``derandomize=True``, no example database), about 150 cases per input kind.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_t2ibias.errors import T2IBiasError
from pytest_t2ibias.suites import Suite, load_suite

ROOT = Path(__file__).resolve().parents[1]


def _baseline_path() -> Path:
    for folder in ("__baselines__", "__snapshots__"):
        path = ROOT / "example_tests" / folder / "test_bias" / "test_doctor.json"
        if path.is_file():
            return path
    raise FileNotFoundError("example_tests/__baselines__/test_bias/test_doctor.json")


SUITE_TEXT = resources.files("pytest_t2ibias.suites").joinpath("t2i-biasbench.yaml").read_text(encoding="utf-8")
POLICY_TEXT = (ROOT / "thresholds" / "t2i-biasbench.yaml").read_text(encoding="utf-8")
BASELINE_TEXT = _baseline_path().read_text(encoding="utf-8")
CAPTIONS_TEXT = (ROOT / "example_tests" / "data" / "sample_captions.csv").read_text(encoding="utf-8")
LABELS_CSV = """\
image_id,gender,ethnicity,skin_tone,species,explicit,implied,unexpected,keywords,puzzle,lab
d0,female,white,,,hospital|doctor|surgery,gloves|mask,,doctor|surgery,,
d1,male,unknown,fair,,doctor,,plant,,,
a0,,,,rat,animal|puzzle,,,animal,puzzle,laboratory
"""
LABELS_JSON = json.dumps(
    {
        "d0": {
            "labels": {"gender": "female", "ethnicity": "white"},
            "present": {"explicit": ["doctor", "surgery"], "implied": ["gloves"], "unexpected": [], "keywords": []},
        },
        "d1": {
            "labels": {"gender": "male", "skin_tone": "fair"},
            "present": {"explicit": ["doctor"], "implied": [], "unexpected": ["plant"], "keywords": ["doctor"]},
        },
        "a0": {
            "labels": {"species": "rat"},
            "present": {"explicit": ["animal"], "implied": [], "unexpected": [], "keywords": [], "lab": ["laboratory"]},
        },
    },
    indent=1,
)

#: Per case: generous for a loaded 2-core CI machine; the slowest input (the suite) takes ~30 ms.
FUZZ = settings(
    max_examples=150,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- mutations ----------------------------------------------------------------------------------------

NUMBERS = [
    "nan", ".nan", "NaN", "inf", ".inf", "-.inf", "Infinity", "-Infinity", "1e999", "-1", "-5", "0", "1e10",
    "1e12", "1.0e+12", "99999999999999999999999", "9" * 5000, "-0.0", "0x10", "1_000", "0.5", "",
]  # fmt: skip
TOKENS = [
    "\n", ": ", ":", "- ", "-", "[", "]", "{", "}", "&a ", "*a", "&a [*a, *a, *a] ", "<<: ", "? ",
    "!!python/name:os.system ",
    "!!binary ", "!!float ", "'", '"', ",", ";", "\t", "|", "#", "\x00", "\ufeff", "\u2028", "\r", "\r\n", "---\n",
    "...\n", "%YAML 1.1\n", "~", "null", "true", "2024-13-45", "\\", "\\u0000", "ï¿½", "é", "x" * 300,
    "[" * 200, "{a: " * 150, "[" * 3000, '{"a": ' * 3000, "  ", "    ", "a\nb",
]  # fmt: skip
VALUES: list[Any] = [
    None, True, False, 0, -1, -5, 1e308, math.nan, math.inf, -math.inf, 10**30, "", " ", "\t\n", "x" * 5000,
    "nan", "1e12", [], {}, [1, "a"], {"a": 1}, {"": None}, [[[[]]]], "doctor", "male", 0.5, -0.5, 1.5,
]  # fmt: skip

Mutation = Callable[[str], str]
TextMutator = Callable[[st.DrawFn, str], str]


def _pos(draw: st.DrawFn, text: str) -> int:
    return draw(st.integers(0, len(text)))


def _span(draw: st.DrawFn, text: str) -> tuple[int, int]:
    i = _pos(draw, text)
    return i, min(len(text), i + draw(st.integers(0, 40)))


def _token(draw: st.DrawFn) -> str:
    return draw(st.one_of(st.sampled_from(TOKENS), st.sampled_from(NUMBERS), st.text(max_size=8)))


def m_delete(draw: st.DrawFn, text: str) -> str:
    i, j = _span(draw, text)
    return text[:i] + text[j:]


def m_insert(draw: st.DrawFn, text: str) -> str:
    i = _pos(draw, text)
    return text[:i] + _token(draw) + text[i:]


def m_replace(draw: st.DrawFn, text: str) -> str:
    i, j = _span(draw, text)
    return text[:i] + _token(draw) + text[j:]


def m_repeat(draw: st.DrawFn, text: str) -> str:
    i, j = _span(draw, text)
    return text[:j] + text[i:j] * draw(st.integers(1, 20)) + text[j:]


def m_truncate(draw: st.DrawFn, text: str) -> str:
    return text[: _pos(draw, text)]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True) or [""]


def m_line_delete(draw: st.DrawFn, text: str) -> str:
    lines = _lines(text)
    del lines[draw(st.integers(0, len(lines) - 1))]
    return "".join(lines)


def m_line_duplicate(draw: st.DrawFn, text: str) -> str:
    """A repeated line: in YAML and JSON, most often a duplicate key."""
    lines = _lines(text)
    k = draw(st.integers(0, len(lines) - 1))
    lines.insert(k, lines[k] if lines[k].endswith("\n") else lines[k] + "\n")
    return "".join(lines)


def m_line_swap(draw: st.DrawFn, text: str) -> str:
    lines = _lines(text)
    a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[a], lines[b] = lines[b], lines[a]
    return "".join(lines)


def m_line_indent(draw: st.DrawFn, text: str) -> str:
    lines = _lines(text)
    k = draw(st.integers(0, len(lines) - 1))
    lines[k] = draw(st.sampled_from(["  ", " ", "\t", "- "])) + lines[k] if draw(st.booleans()) else lines[k].lstrip()
    return "".join(lines)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def m_number(draw: st.DrawFn, text: str) -> str:
    """A number replaced by nan, inf, a huge or negative value, or nothing."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return m_insert(draw, text)
    match = found[draw(st.integers(0, len(found) - 1))]
    return text[: match.start()] + draw(st.sampled_from(NUMBERS)) + text[match.end() :]


def m_word(draw: st.DrawFn, text: str) -> str:
    """A word (a key, a name, a term) emptied, retyped, or swapped for another word of the file."""
    found = list(_WORD.finditer(text))
    if not found:
        return m_insert(draw, text)
    match = found[draw(st.integers(0, len(found) - 1))]
    other = found[draw(st.integers(0, len(found) - 1))].group()
    replacement = draw(
        st.sampled_from(
            ["", '""', "''", "null", "[]", "{}", "1", "-1", ".nan", "a\\nb", "\\u2028", other, other + other]
        )
    )
    return text[: match.start()] + replacement + text[match.end() :]


def m_deep(draw: st.DrawFn, text: str) -> str:
    """A number or word wrapped in many brackets: nesting deeper than a recursive reader survives."""
    found = list(_NUMBER.finditer(text)) + list(_WORD.finditer(text))
    if not found:
        return m_insert(draw, text)
    match = found[draw(st.integers(0, len(found) - 1))]
    depth = draw(st.sampled_from([2, 99, 101, 3000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"k": ', "}"), ("{k: ", "}")]))
    return text[: match.start()] + opener * depth + match.group() + closer * depth + text[match.end() :]


TEXT_MUTATORS: list[TextMutator] = [
    m_delete, m_insert, m_replace, m_repeat, m_truncate, m_line_delete, m_line_duplicate, m_line_swap,
    m_line_indent, m_number, m_word, m_deep,
]  # fmt: skip


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``data`` (dict keys and list indices)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def mutate_structure(draw: st.DrawFn, data: Any, paths: list[tuple[Any, ...]], *, cycles: bool) -> Any:
    """One structured mutation of a deep copy of ``data``; ``cycles``: sharing may make it recursive."""
    data = copy.deepcopy(data)
    path = paths[draw(st.integers(0, len(paths) - 1))]
    parent, key = _get(data, path[:-1]), path[-1]
    value = parent[key]
    kind = draw(st.sampled_from(["value", "drop", "wrap", "share", "rename", "stringify", "nest"]))
    if kind == "value":
        parent[key] = copy.deepcopy(draw(st.sampled_from(VALUES)))
    elif kind == "drop":
        del parent[key]
    elif kind == "wrap":  # a type swapped: a value in a list, a mapping, or a list of its items
        parent[key] = draw(st.sampled_from([[value], {"x": value}, list(value) if isinstance(value, dict) else value]))
    elif kind == "share":  # the same object in two places: YAML writes an anchor and an alias
        other = _get(data, paths[draw(st.integers(0, len(paths) - 1))][:-1] or ())
        parent[key] = other if cycles else copy.deepcopy(other)
    elif kind == "rename" and isinstance(parent, dict):
        sibling = draw(st.sampled_from([*parent, "", " ", "x" * 500, "unknown_key", "line\nbreak", 1, None]))
        parent[sibling if sibling != key else f"{key}_"] = parent.pop(key)
    elif kind == "stringify":
        parent[key] = str(value)
    else:  # nest: deeper than any reader should have to follow
        for _ in range(draw(st.sampled_from([1, 2, 50, 150, 3000]))):
            value = [value]
        parent[key] = value
    return data


def dump_yaml(data: Any) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, RecursionError):
        return yaml.safe_dump({"unrepresentable": True})


def dump_json(data: Any) -> str:
    try:
        return json.dumps(data, indent=1)
    except (ValueError, TypeError, RecursionError):
        return "{}"


def mutated(
    seed: str, structure: Callable[[st.DrawFn], str] | None = None, *, byte_flips: bool = True
) -> st.SearchStrategy[bytes]:
    """Bytes of ``seed`` after one structured mutation (sometimes) and one to three text mutations."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        text = structure(draw) if structure is not None and draw(st.booleans()) else seed
        for _ in range(draw(st.integers(0 if structure is not None else 1, 3))):
            text = draw(st.sampled_from(TEXT_MUTATORS))(draw, text)
        raw = text.encode("utf-8", errors="surrogatepass")
        if byte_flips and raw and draw(st.integers(0, 9)) == 0:
            i = draw(st.integers(0, len(raw) - 1))
            raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
        return raw

    return build()


def structured_yaml(seed: str) -> Callable[[st.DrawFn], str]:
    data = yaml.safe_load(seed)
    paths = _paths(data)
    return lambda draw: dump_yaml(mutate_structure(draw, data, paths, cycles=True))


def structured_json(seed: str) -> Callable[[st.DrawFn], str]:
    data = json.loads(seed)
    paths = _paths(data)
    return lambda draw: dump_json(mutate_structure(draw, data, paths, cycles=False))


def structured_csv(seed: str, delimiters: str = ",,;\t|") -> Callable[[st.DrawFn], str]:
    """Cells emptied or changed, rows repeated, cells dropped or added, columns swapped, a huge cell;
    written back with one of ``delimiters``."""
    rows = list(csv.reader(io.StringIO(seed)))

    def build(draw: st.DrawFn) -> str:
        table = [list(row) for row in rows]
        r = draw(st.integers(0, len(table) - 1))
        c = draw(st.integers(0, max(0, len(table[r]) - 1)))
        kind = draw(st.sampled_from(["cell", "duplicate_row", "drop_cell", "extra_cell", "swap_columns", "long"]))
        if kind == "cell" and table[r]:
            table[r][c] = draw(st.sampled_from(["", " ", '"', "a,b", "a;b", "a|b", "\n", "nan", "unknown", "x|x|x"]))
        elif kind == "duplicate_row":
            table.insert(draw(st.integers(0, len(table))), list(table[r]))
        elif kind == "drop_cell" and table[r]:
            del table[r][c]
        elif kind == "extra_cell":
            table[r].append(draw(st.sampled_from(["", "extra", "female"])))
        elif kind == "swap_columns" and len(table[r]) > 1:
            for row in table:
                if len(row) > c + 1 and c > 0:
                    row[c - 1], row[c] = row[c], row[c - 1]
        elif kind == "long" and table[r]:
            table[r][c] = "x" * draw(st.sampled_from([1000, 200_000]))
        out = io.StringIO()
        delimiter = draw(st.sampled_from(delimiters))
        csv.writer(out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(table)
        return out.getvalue()

    return build


# --- the check --------------------------------------------------------------------------------------------


def loads_or_clean_error(load: Callable[[], object], source: str) -> None:
    """``load`` returns, or raises the package's error with one line naming ``source``; nothing else."""
    __tracebackhide__ = True
    try:
        load()
    except T2IBiasError as err:
        message = str(err)
        assert message, "empty error message"
        assert len(message.splitlines()) == 1, f"not one line: {message[:500]!r}"
        assert source in message, f"does not name the file: {message[:300]!r}"
        assert len(message) <= 5000, f"unbounded message ({len(message)} chars): {message[:300]!r}"


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("t2i-biasbench")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(raw=mutated(SUITE_TEXT, structured_yaml(SUITE_TEXT)))
def test_fuzz_suite_yaml(folder: Path, raw: bytes) -> None:
    path = folder / "suite.yaml"
    path.write_bytes(raw)
    loads_or_clean_error(lambda: load_suite(path), str(path))


@FUZZ
@given(raw=mutated(POLICY_TEXT, structured_yaml(POLICY_TEXT)))
def test_fuzz_policy_yaml(folder: Path, suite: Suite, raw: bytes) -> None:
    from pytest_t2ibias.judge.policy import find_policy, load_policy

    thresholds = folder / "thresholds"
    thresholds.mkdir(exist_ok=True)
    path = thresholds / "t2i-biasbench.yaml"
    path.write_bytes(raw)
    loads_or_clean_error(lambda: load_policy(path, suite), str(path))
    loads_or_clean_error(lambda: find_policy(thresholds, suite), str(path))


@FUZZ
@given(raw=mutated(BASELINE_TEXT, structured_json(BASELINE_TEXT)))
def test_fuzz_baseline_json(raw: bytes) -> None:
    from pytest_t2ibias.judge.baseline import parse_baseline

    source = "__baselines__/test_bias/test_doctor.json"
    # as the plugin reads it: undecodable bytes become U+FFFD, which the parser rejects
    try:
        loads_or_clean_error(lambda: parse_baseline(raw.decode("utf-8", errors="replace"), source), source)
    except RecursionError:  # BASELINE_DEEP_JSON_BUG: kept red by test_baseline_deep_json_is_a_corrupt_baseline
        pass


@FUZZ
@given(raw=mutated(CAPTIONS_TEXT, structured_csv(CAPTIONS_TEXT)))
def test_fuzz_caption_csv(folder: Path, suite: Suite, raw: bytes) -> None:
    from pytest_t2ibias.replay import bucket_rows, read_caption_csv

    path = folder / "captions.csv"
    path.write_bytes(raw)

    def load() -> None:
        table = read_caption_csv(path)
        assert len(table.rows) + table.bad_rows >= 1
        bucket_rows(table.rows, suite)

    loads_or_clean_error(load, str(path))


@FUZZ
@given(raw=mutated(LABELS_CSV, structured_csv(LABELS_CSV, ",")))  # labels files are comma-separated
def test_fuzz_labels_csv(folder: Path, suite: Suite, raw: bytes) -> None:
    from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

    path = folder / "labels.csv"
    path.write_bytes(raw)
    loads_or_clean_error(lambda: PrecomputedLabels.from_file(path, suite), str(path))


@FUZZ
@given(raw=mutated(LABELS_JSON, structured_json(LABELS_JSON)))
def test_fuzz_labels_json(folder: Path, suite: Suite, raw: bytes) -> None:
    from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

    path = folder / "labels.json"
    path.write_bytes(raw)
    loads_or_clean_error(lambda: PrecomputedLabels.from_file(path, suite), str(path))


@FUZZ
@given(raw=mutated("presence: 0.5\ncategories:\n  doctor:\n    attribute: {male: 0.65, female: 0.35}\n"))
def test_fuzz_synthetic_config_yaml(folder: Path, suite: Suite, raw: bytes) -> None:
    from pytest_t2ibias.generate.synthetic import check_config, load_config

    path = folder / "synthetic.yaml"
    path.write_bytes(raw)
    loads_or_clean_error(lambda: check_config(load_config(path), suite, str(path)), str(path))


# --- hostile inputs, each tried on purpose (random mutation finds them rarely) ---------------------------


_QUOTED_VALUE = re.compile(r'(?<=: )"[^"]*"')


def _first_value(text: str, new: str) -> str:
    """``text`` with its first number (or, in JSON without numbers, first string value) replaced by ``new``."""
    match = _NUMBER.search(text) or _QUOTED_VALUE.search(text)
    assert match is not None
    return text[: match.start()] + new + text[match.end() :]


YAML_HOSTILE: dict[str, Callable[[str], str]] = {
    "deep_flow": lambda t: _first_value(t, "[" * 3000 + "1" + "]" * 3000),
    "deep_block": lambda t: t + "extra:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(3000)),
    "alias_bomb": lambda t: (
        "bomb: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"b{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(8))
        + t
    ),
    "recursive_alias": lambda t: t + "loop: &loop [*loop]\n",
    "duplicate_top_key": lambda t: t + t.splitlines()[-1].lstrip() + "\n" if ":" in t.splitlines()[-1] else t,
    "key_with_line_break": lambda t: t + '"line\\nbreak": 1\n',
    "nan": lambda t: _first_value(t, ".nan"),
    "inf": lambda t: _first_value(t, ".inf"),
    "huge_int": lambda t: _first_value(t, "9" * 5000),
    "huge_number": lambda t: _first_value(t, "1" + "0" * 400),
    "bad_date": lambda t: _first_value(t, "2024-13-45"),
    "python_tag": lambda t: t + "x: !!python/object/apply:os.system [echo]\n",
    "two_documents": lambda t: t + "---\nname: again\n",
    "nul": lambda t: t + "\x00",
    "bom": lambda t: "\ufeff" + t,
    "line_separators": lambda t: t.replace("\n", "\u2028", 3),
    "tab_indent": lambda t: t.replace("\n  ", "\n\t", 1),
    "empty": lambda t: "",
    "only_a_comment": lambda t: "# nothing\n",
    "top_level_list": lambda t: "- " + t.replace("\n", "\n  "),
    "long_key": lambda t: t + "k" * 100_000 + ": 1\n",
}
JSON_HOSTILE: dict[str, Callable[[str], str]] = {
    "deep_arrays": lambda t: _first_value(t, "[" * 100_000 + "1" + "]" * 100_000),
    "deep_objects": lambda t: _first_value(t, '{"k": ' * 3000 + "1" + "}" * 3000),
    "key_with_line_break": lambda t: t.replace('"', '"line\\nbreak', 1),
    "key_with_line_separator": lambda t: t.replace('"', '"line\\u2028break', 1),
    "duplicate_key": lambda t: t.replace("{", '{"d": 1, "d": 2, ', 1),
    "nan": lambda t: _first_value(t, "NaN"),
    "infinity": lambda t: _first_value(t, "-Infinity"),
    "huge_int": lambda t: _first_value(t, "9" * 5000),
    "huge_float": lambda t: _first_value(t, "1e999"),
    "lone_surrogate": lambda t: t.replace('"', '"\\ud800', 1),
    "nul_escape": lambda t: t.replace('"', '"\\u0000', 1),
    "top_level_list": lambda t: f"[{t}]",
    "top_level_string": lambda t: '"labels"',
    "empty": lambda t: "",
    "bom": lambda t: "\ufeff" + t,
}
CSV_HOSTILE: dict[str, Callable[[str], str]] = {
    "nul": lambda t: t.replace(",", ",\x00", 1),
    "field_over_csv_limit": lambda t: t + "beauty_9.png," + "x" * 200_000 + "\n",
    "unterminated_quote": lambda t: t + 'beauty_9.png,"never closed\n',
    "only_delimiters": lambda t: ",,,\n;;;\n|||\n",
    "bom": lambda t: "\ufeff" + t,
    "cr_only": lambda t: t.replace("\n", "\r"),
    "line_separator_in_cells": lambda t: t.replace(" ", "\u2028", 5),
    "ten_thousand_columns": lambda t: t + ",".join(["x"] * 10_000) + "\n",
    "semicolons": lambda t: t.replace(",", ";"),
    "tabs": lambda t: t.replace(",", "\t"),
    "every_row_twice": lambda t: t + "\n".join(t.splitlines()[1:]) + "\n",
    "header_only": lambda t: t.splitlines()[0] + "\n",
    "empty": lambda t: "",
    "quote_in_name": lambda t: t.replace("\n", '\n"a""b",', 1),
    "line_break_in_name": lambda t: t.replace("\n", '\n"a\nb",x,', 1),
}


def _load_suite_file(path: Path, suite: Suite) -> None:
    load_suite(path)


def _load_policy_file(path: Path, suite: Suite) -> None:
    from pytest_t2ibias.judge.policy import find_policy, load_policy

    load_policy(path, suite)
    find_policy(path.parent, suite)


def _load_synthetic_file(path: Path, suite: Suite) -> None:
    from pytest_t2ibias.generate.synthetic import check_config, load_config

    check_config(load_config(path), suite, str(path))


def _load_baseline_file(path: Path, suite: Suite) -> None:
    from pytest_t2ibias.judge.baseline import parse_baseline

    parse_baseline(path.read_bytes().decode("utf-8", errors="replace"), str(path))


def _load_captions_file(path: Path, suite: Suite) -> None:
    from pytest_t2ibias.replay import read_caption_csv

    read_caption_csv(path)


def _load_labels_file(path: Path, suite: Suite) -> None:
    from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

    PrecomputedLabels.from_file(path, suite)


SYNTHETIC_TEXT = "presence: 0.5\ncategories:\n  doctor:\n    attribute: {male: 0.65, female: 0.35}\n"
KINDS: dict[str, tuple[str, str, Callable[[Path, Suite], None], dict[str, Callable[[str], str]]]] = {
    "suite": (SUITE_TEXT, "suite.yaml", _load_suite_file, YAML_HOSTILE),
    "policy": (POLICY_TEXT, "t2i-biasbench.yaml", _load_policy_file, YAML_HOSTILE),
    "synthetic": (SYNTHETIC_TEXT, "synthetic.yaml", _load_synthetic_file, YAML_HOSTILE),
    "baseline": (BASELINE_TEXT, "test_doctor.json", _load_baseline_file, JSON_HOSTILE),
    "labels_json": (LABELS_JSON, "labels.json", _load_labels_file, JSON_HOSTILE),
    "captions": (CAPTIONS_TEXT, "captions.csv", _load_captions_file, CSV_HOSTILE),
    "labels_csv": (LABELS_CSV, "labels.csv", _load_labels_file, CSV_HOSTILE),
}
CASES = [pytest.param(kind, name, id=f"{kind}-{name}") for kind, (*_, hostile) in KINDS.items() for name in hostile]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_hostile_input(tmp_path: Path, suite: Suite, kind: str, case: str) -> None:
    seed, name, load, hostile = KINDS[kind]
    folder = tmp_path / "inputs"
    folder.mkdir()
    path = folder / name
    path.write_bytes(hostile[case](seed).encode("utf-8", errors="surrogatepass"))
    start = time.perf_counter()
    loads_or_clean_error(lambda: load(path, suite), str(path))
    assert time.perf_counter() - start < 2.0


# --- found by this file in judge/baseline.py, fixed there ----------------------------------------------------


def _baseline_with_metric(name: str, value: object) -> str:
    data = json.loads(BASELINE_TEXT)
    data["metrics"][name] = value
    return json.dumps(data)


def test_baseline_field_name_with_line_break_is_one_line() -> None:
    from pytest_t2ibias.judge.baseline import parse_baseline

    loads_or_clean_error(lambda: parse_baseline(_baseline_with_metric("a\nb", "x"), "b.json"), "b.json")


def test_baseline_field_name_is_bounded() -> None:
    from pytest_t2ibias.errors import CorruptBaselineError
    from pytest_t2ibias.judge.baseline import parse_baseline

    with pytest.raises(CorruptBaselineError) as err:
        parse_baseline(_baseline_with_metric("k" * 100_000, "x"), "b.json")
    assert len(str(err.value)) < 500


def test_baseline_deep_json_is_a_corrupt_baseline() -> None:
    from pytest_t2ibias.judge.baseline import parse_baseline

    loads_or_clean_error(lambda: parse_baseline("[" * 100_000 + "]" * 100_000, "b.json"), "b.json")


def test_baseline_with_a_repeated_key_is_corrupt() -> None:
    from pytest_t2ibias.errors import CorruptBaselineError
    from pytest_t2ibias.judge.baseline import parse_baseline

    text = BASELINE_TEXT.replace('"metrics": {', '"metrics": {"male_share": {"value": 0.1}, ', 1)
    assert text != BASELINE_TEXT
    with pytest.raises(CorruptBaselineError, match=r"b\.json: baseline has the key male_share twice"):
        parse_baseline(text, "b.json")
