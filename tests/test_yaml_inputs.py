"""One way to read YAML (issue 10, items 5 and 6): duplicate keys, alias bombs and deep nesting.

Suites, policies (``load_policy`` and ``find_policy``) and synthetic configs all read YAML through
:func:`pytest_t2ibias._io.load_yaml`; each problem is a one-line error of the package naming the file,
given in well under a second (the time bound below is generous for a loaded 2-core CI machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import pytest

from pytest_t2ibias._io import MAX_YAML_DEPTH, MAX_YAML_NODES, load_yaml, short_repr
from pytest_t2ibias.errors import (
    LabelsFileError,
    PolicyError,
    SuiteError,
    SyntheticConfigError,
    T2IBiasError,
)
from pytest_t2ibias.generate.synthetic import load_config
from pytest_t2ibias.judge.policy import find_policy, load_policy
from pytest_t2ibias.suites import Suite, load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE_TEXT = resources.files("pytest_t2ibias.suites").joinpath("t2i-biasbench.yaml").read_text(encoding="utf-8")
POLICY_TEXT = (ROOT / "thresholds" / "t2i-biasbench.yaml").read_text(encoding="utf-8")
#: Seconds one rejected input may take: the real cost is milliseconds.
BOUND_S = 2.0


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("t2i-biasbench")


@contextmanager
def within(seconds: float = BOUND_S) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"took {elapsed:.2f} s"


def error_of(call: Callable[[], object], kind: type[T2IBiasError]) -> str:
    """The one-line message ``call`` raises, within the time bound."""
    __tracebackhide__ = True
    with within(), pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert len(message) < 2000, message[:300]
    return message


# --- load_yaml ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "'a'"),
        ("outer:\n  x: 1\n  y: 2\n  x: 3\n", 4, "'x'"),
        ("{a: 1, b: 2, a: 1}\n", 1, "'a'"),
        ("- {k: 1}\n- k: 1\n  k: 2\n", 3, "'k'"),
        ("1: one\n2: two\n1: uno\n", 3, "1"),
        ("true: y\n? true\n: n\n", 2, "True"),
    ],
    ids=["top", "nested", "flow", "in_list", "int_key", "bool_key"],
)
def test_duplicate_key_names_source_line_and_key(text: str, line: int, key: str) -> None:
    message = error_of(lambda: load_yaml(text, "conf.yaml", T2IBiasError), T2IBiasError)
    assert message == f"conf.yaml: line {line}: duplicate key {key}"


def test_merge_keys_are_not_duplicates() -> None:
    text = "base: &b {max: 0.5, severity: warn}\nrule:\n  <<: *b\n  max: 0.4\n"
    assert load_yaml(text, "x", T2IBiasError)["rule"] == {"max": 0.4, "severity": "warn"}


def test_same_key_in_different_mappings_is_fine() -> None:
    assert load_yaml("a: {x: 1}\nb: {x: 2}\n", "x", T2IBiasError) == {"a": {"x": 1}, "b": {"x": 2}}


def test_the_error_class_is_the_callers() -> None:
    for kind in (SuiteError, PolicyError, SyntheticConfigError):
        with pytest.raises(kind):
            load_yaml("a: 1\na: 2\n", "x", kind)


def test_empty_document_is_none() -> None:
    assert load_yaml("", "x", T2IBiasError) is None
    assert load_yaml("# only a comment\n", "x", T2IBiasError) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: 1\n---\nb: 2\n", "not valid YAML at line 2"),
        ("a: [1, 2\n", "not valid YAML at line 2"),
        ("when: 2024-13-45\n", "not valid YAML: month must be in 1..12"),
        ("n: " + "9" * 5000 + "\n", "not valid YAML: Exceeds the limit"),
        ("a: *nowhere\n", "undefined alias"),
        ("a: !!python/object:os.system x\n", "not valid YAML"),
        ("\x00a: 1\n", "special characters are not allowed"),  # found by the fuzzer: raised while opening
    ],
    ids=["two_documents", "unclosed", "bad_date", "huge_int", "undefined_alias", "python_tag", "nul"],
)
def test_unreadable_yaml_is_one_line(text: str, fragment: str) -> None:
    message = error_of(lambda: load_yaml(text, "f.yaml", T2IBiasError), T2IBiasError)
    assert message.startswith("f.yaml: ") and fragment in message


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic alias bomb: ``width ** levels`` values from about 1 KB."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_rejected_fast() -> None:
    text = billion_laughs()
    assert len(text) < 1200
    message = error_of(lambda: load_yaml(text, "bomb.yaml", T2IBiasError), T2IBiasError)
    assert message == f"bomb.yaml: the YAML expands to more than {MAX_YAML_NODES:,} values (an alias bomb?)"


def test_aliases_below_the_limit_still_load() -> None:
    text = billion_laughs(levels=3, width=9)  # 9 + 81 + 729 values
    data = load_yaml(text, "x", T2IBiasError)
    assert len(data["l2"]) == 9 and data["l2"][0] is data["l1"]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "{" * 5000 + "}" * 5000,
        "a: " + "[" * 5000 + "1" + "]" * 5000 + "\n",
        "".join(" " * i + "k:\n" for i in range(5000)),
        "".join(" " * i + "-\n" for i in range(5000)),
    ],
    ids=["flow_lists", "flow_maps", "under_a_key", "block_maps", "block_lists"],
)
def test_deep_nesting_is_rejected_fast(text: str) -> None:
    message = error_of(lambda: load_yaml(text, "deep.yaml", T2IBiasError), T2IBiasError)
    assert message.startswith("deep.yaml: line ") and f"nested deeper than {MAX_YAML_DEPTH} levels" in message


def test_nesting_up_to_the_limit_loads() -> None:
    data = load_yaml("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH, "x", T2IBiasError)
    depth = 0
    while isinstance(data, list):
        depth, data = depth + 1, data[0] if data else None
    assert depth == MAX_YAML_DEPTH


def test_depth_through_aliases_counts() -> None:
    """Each level shallow in the file, but deep once the aliases are expanded."""
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [[[*a{i - 1}]]]" for i in range(1, 60)]
    message = error_of(lambda: load_yaml("\n".join(lines) + "\n", "d.yaml", T2IBiasError), T2IBiasError)
    assert "nested deeper than" in message and "aliases expanded" in message


def test_recursive_alias_is_rejected() -> None:
    message = error_of(lambda: load_yaml("a: &x [1, *x]\n", "r.yaml", T2IBiasError), T2IBiasError)
    assert message == "r.yaml: line 1: alias *x refers to a node that contains it"


def test_short_repr_is_bounded_and_cheap() -> None:
    shared = ["x" * 1000] * 1000
    for _ in range(6):
        shared = [shared] * 1000  # 10**21 values when expanded
    with within(0.5):
        shown = short_repr(shared)
    assert len(shown) <= 120 and "..." in shown
    assert "\n" not in short_repr("line one\nline two")


# --- suites ---------------------------------------------------------------------------------------------


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_suite_with_a_repeated_category(tmp_path: Path) -> None:
    repeated = SUITE_TEXT + "\n  doctor:\n    prompts: [A doctor.]\n    metrics: [gmr]\n"
    line = len(SUITE_TEXT.splitlines()) + 2
    path = _write(tmp_path, "suite.yaml", repeated)
    message = error_of(lambda: load_suite(path), SuiteError)
    assert message == f"{path}: line {line}: duplicate key 'doctor'"


def test_suite_with_a_repeated_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "suite.yaml", SUITE_TEXT.replace("seed: 0\n", "seed: 0\nseed: 1\n"))
    message = error_of(lambda: load_suite(path), SuiteError)
    assert str(path) in message and "duplicate key 'seed'" in message


def test_suite_alias_bomb(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "bomb.yaml", billion_laughs() + "name: bomb\ncategories: {c: {prompts: *l8, metrics: [gmr]}}\n"
    )
    message = error_of(lambda: load_suite(path), SuiteError)
    assert message.startswith(f"{path}: ") and "alias bomb" in message


def test_suite_schema_error_on_a_big_shared_value_is_fast_and_short(tmp_path: Path) -> None:
    """Below the alias limit but invalid: the message shows the value bounded (the old repr took > 60 s)."""
    text = billion_laughs(levels=4, width=9) + "name: big\ncategories: {c: {prompts: [*l3], metrics: [gmr]}}\n"
    path = _write(tmp_path, "big.yaml", text)
    message = error_of(lambda: load_suite(path), SuiteError)
    assert "categories.c.prompts.0" in message and "..." in message


def test_suite_many_schema_errors_fit_one_line(tmp_path: Path) -> None:
    items = ", ".join(["*l2"] * 120)  # 120 x 819 = ~98,000 values, every prompt of the wrong type
    text = (
        billion_laughs(levels=3, width=9) + f"name: many\ncategories: {{c: {{prompts: [{items}], metrics: [gmr]}}}}\n"
    )
    path = _write(tmp_path, "many.yaml", text)
    message = error_of(lambda: load_suite(path), SuiteError)
    assert "and 120 more errors" in message  # 120 prompts + 3 unknown top-level keys, 3 shown


def test_suite_deep_nesting(tmp_path: Path) -> None:
    path = _write(tmp_path, "deep.yaml", "name: deep\ncategories: " + "[" * 5000 + "]" * 5000 + "\n")
    message = error_of(lambda: load_suite(path), SuiteError)
    assert message.startswith(f"{path}: line 2: nested deeper than")


# --- policies ---------------------------------------------------------------------------------------------


def _policy_with_doctor_twice() -> tuple[str, int]:
    """The shipped policy with a second ``doctor:`` block: the first one's rules would silently vanish."""
    extra = "  doctor:\n    composite: {max: 0.5}\n"
    return POLICY_TEXT + extra, len(POLICY_TEXT.splitlines()) + 1


def test_policy_with_a_repeated_category_block(tmp_path: Path, suite: Suite) -> None:
    text, line = _policy_with_doctor_twice()
    path = _write(tmp_path, "policy.yaml", text)
    message = error_of(lambda: load_policy(path, suite), PolicyError)
    assert message == f"{path}: line {line}: duplicate key 'doctor'"


def test_policy_with_a_repeated_rule_key(tmp_path: Path, suite: Suite) -> None:
    text = POLICY_TEXT.replace("male_share: {regression: {absolute: 0.1}}", "male_share: {max: 1, max: 0.2}")
    path = _write(tmp_path, "policy.yaml", text)
    assert "duplicate key 'max'" in error_of(lambda: load_policy(path, suite), PolicyError)


def test_find_policy_reads_every_file_with_the_same_reader(tmp_path: Path, suite: Suite) -> None:
    text, line = _policy_with_doctor_twice()
    path = _write(tmp_path / "thresholds", "gates.yaml", text)
    message = error_of(lambda: find_policy(tmp_path / "thresholds", suite), PolicyError)
    assert message == f"{path}: line {line}: duplicate key 'doctor'"
    # a duplicate in a file for another suite is still an error: it cannot be told what suite it is for
    path.unlink()
    other = _write(tmp_path / "thresholds", "other.yaml", "suite: x\nsuite: y\n")
    assert error_of(lambda: find_policy(tmp_path / "thresholds", suite), PolicyError).startswith(f"{other}: line 2")


def test_policy_alias_bomb_and_deep_nesting(tmp_path: Path, suite: Suite) -> None:
    bomb = _write(tmp_path, "bomb.yaml", billion_laughs() + "suite: t2i-biasbench\n")
    assert "alias bomb" in error_of(lambda: load_policy(bomb, suite), PolicyError)
    deep = _write(tmp_path, "deep.yaml", "default: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n")
    assert "nested deeper than" in error_of(lambda: load_policy(deep, suite), PolicyError)
    folder = tmp_path / "folder"
    _write(folder, "t2i-biasbench.yaml", billion_laughs())
    assert "alias bomb" in error_of(lambda: find_policy(folder, suite), PolicyError)


# --- synthetic configs and labels JSON ---------------------------------------------------------------------


def test_synthetic_config_duplicates_bombs_and_depth(tmp_path: Path) -> None:
    dup = _write(tmp_path, "dup.yaml", "categories:\n  doctor:\n    attribute: {male: 0.5, female: 0.5, male: 0.9}\n")
    assert error_of(lambda: load_config(dup), SyntheticConfigError) == f"{dup}: line 3: duplicate key 'male'"
    bomb = _write(tmp_path, "bomb.yaml", billion_laughs())
    assert "alias bomb" in error_of(lambda: load_config(bomb), SyntheticConfigError)
    deep = _write(tmp_path, "deep.yaml", "categories: " + "[" * 5000 + "]" * 5000)
    assert "nested deeper than" in error_of(lambda: load_config(deep), SyntheticConfigError)


def test_labels_json_duplicate_keys_and_depth(tmp_path: Path, suite: Suite) -> None:
    from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

    entry = '{"labels": {"gender": "male"}, "present": {}}'
    dup = _write(tmp_path, "dup.json", f'{{"d0": {entry}, "d0": {entry}}}')
    message = error_of(lambda: PrecomputedLabels.from_file(dup, suite), LabelsFileError)
    assert str(dup) in message and "'d0'" in message
    inner = _write(tmp_path, "inner.json", '{"d0": {"labels": {"gender": "male", "gender": "female"}, "present": {}}}')
    message = error_of(lambda: PrecomputedLabels.from_file(inner, suite), LabelsFileError)
    assert str(inner) in message and "labels.gender" in message and "given twice" in message
    deep = _write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in error_of(lambda: PrecomputedLabels.from_file(deep, suite), LabelsFileError)


def test_schema_errors_never_repr_the_whole_input() -> None:
    """``parse_suite`` / ``parse_policy`` on data built in Python (no YAML limit): 10**18 shared values."""
    from pytest_t2ibias.judge.policy import parse_policy
    from pytest_t2ibias.suites import parse_suite

    huge: object = ["lol"] * 1000
    for _ in range(5):
        huge = [huge] * 1000
    message = error_of(
        lambda: parse_suite({"name": "x", "categories": {"c": {"prompts": huge, "metrics": ["gmr"]}}}, "s"),
        SuiteError,
    )
    assert message.startswith("s: field `categories.c.prompts.0`") and "more errors" in message
    message = error_of(lambda: parse_policy({"default": {"composite": {"max": huge}}}, "p"), PolicyError)
    assert message.startswith("p: field `default.composite.max`")


def test_field_name_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    """Found by the fuzzer: an unknown key ``"line\\nbreak"`` put a line break into the field name."""
    path = _write(tmp_path, "suite.yaml", SUITE_TEXT + '"line\\nbreak": 1\n')
    message = error_of(lambda: load_suite(path), SuiteError)
    assert "field `line break`" in message
