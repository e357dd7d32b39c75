"""Bad values are one-line errors naming the file (or option) and the field, before any image is made
(issue 10, item 9): images per prompt, the cache folder, blank prompts, reference shares, regression
tolerances and contradictory bands.
"""

from __future__ import annotations

import copy
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_t2ibias.cli import main
from pytest_t2ibias.errors import PolicyError, SuiteError
from pytest_t2ibias.judge.policy import load_policy
from pytest_t2ibias.suites import Suite, load_suite
from pytest_t2ibias.suites.schema import MAX_IMAGES_PER_PROMPT

SUITE_TEXT = resources.files("pytest_t2ibias.suites").joinpath("t2i-biasbench.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("t2i-biasbench")


def suite_data() -> dict[str, Any]:
    data = yaml.safe_load(SUITE_TEXT)
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def write_suite(tmp_path: Path, data: dict[str, Any], name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def suite_error(path: Path) -> str:
    __tracebackhide__ = True
    start = time.perf_counter()
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}: "), message
    return message


def policy_error(tmp_path: Path, suite: Suite, text: str) -> tuple[Path, str]:
    __tracebackhide__ = True
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path, suite)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}: "), message
    return path, message


# --- images_per_prompt in a suite ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("0", "0"),
        ("-5", "-5"),
        ("10000000000", "10000000000"),
        ("1.0e+12", "1000000000000"),
        ("1e12", "'1e12'"),  # YAML 1.1 reads this as a string
        ("2.5", "2.5"),
        (".inf", "inf"),
        ("many", "'many'"),
    ],
)
def test_suite_images_per_prompt_out_of_range(tmp_path: Path, raw: str, shown: str) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE_TEXT.replace("images_per_prompt: 100\n", f"images_per_prompt: {raw}\n"), encoding="utf-8")
    message = suite_error(path)
    assert "field `images_per_prompt`" in message and shown in message


def test_suite_images_per_prompt_bounds(tmp_path: Path) -> None:
    data = suite_data()
    data["images_per_prompt"] = MAX_IMAGES_PER_PROMPT
    assert load_suite(write_suite(tmp_path, data)).images_per_prompt == MAX_IMAGES_PER_PROMPT
    data["images_per_prompt"] = MAX_IMAGES_PER_PROMPT + 1
    message = suite_error(write_suite(tmp_path, data, "over.yaml"))
    assert f"less than or equal to {MAX_IMAGES_PER_PROMPT}" in message


# --- blank prompts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_prompt_is_rejected_at_load(tmp_path: Path, blank: str) -> None:
    data = suite_data()
    data["categories"]["doctor"]["prompts"].append(blank)
    index = len(data["categories"]["doctor"]["prompts"]) - 1
    message = suite_error(write_suite(tmp_path, data))
    assert f"field `categories.doctor.prompts.{index}`" in message
    assert "must not be blank" in message and repr(blank) in message


def test_a_prompt_with_text_around_spaces_is_fine(tmp_path: Path) -> None:
    data = suite_data()
    data["categories"]["doctor"]["prompts"] = ["  A doctor.  "]
    assert load_suite(write_suite(tmp_path, data)).categories["doctor"].prompts == ["  A doctor.  "]


# --- reference shares ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("female", "male", "fragment"),
    [
        (".nan", "0.5", "finite number"),
        (".inf", "0.5", "finite number"),
        ("-.inf", "0.5", "finite number"),
        ("-0.5", "1.5", "greater than or equal to 0"),
    ],
    ids=["nan", "inf", "minus_inf", "negative"],
)
def test_reference_shares_must_be_finite_and_not_negative(
    tmp_path: Path, female: str, male: str, fragment: str
) -> None:
    text = SUITE_TEXT.replace(
        "    attribute: gender\n", f"    attribute: gender\n    reference: {{female: {female}, male: {male}}}\n", 1
    )
    assert text != SUITE_TEXT
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    message = suite_error(path)
    assert "reference.female" in message and fragment in message


def test_reference_shares_still_sum_to_one(tmp_path: Path) -> None:
    data = suite_data()
    data["categories"]["doctor"]["reference"] = {"female": 0.5, "male": 0.6}
    message = suite_error(write_suite(tmp_path, data))
    assert "categories.doctor.reference" in message and "sum to 1" in message
    data["categories"]["doctor"]["reference"] = {"female": 0.4, "male": 0.6}
    assert load_suite(write_suite(tmp_path, data, "ok.yaml")).categories["doctor"].reference == {
        "female": 0.4,
        "male": 0.6,
    }


# --- policies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_regression_tolerance_must_be_finite(tmp_path: Path, suite: Suite, kind: str, value: str) -> None:
    _, message = policy_error(tmp_path, suite, f"default:\n  composite: {{regression: {{{kind}: {value}}}}}\n")
    assert f"field `default.composite.regression.{kind}`" in message


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("{min: 0.5, warn_max: 0.3}", "min/warn_max: 0.5 is above 0.3"),
        ("{warn_min: 0.6, max: 0.4}", "warn_min/max: 0.6 is above 0.4"),
    ],
    ids=["min_above_warn_max", "warn_min_above_max"],
)
def test_contradictory_bands(tmp_path: Path, suite: Suite, rule: str, fragment: str) -> None:
    path, message = policy_error(tmp_path, suite, f"categories:\n  doctor:\n    parity_difference: {rule}\n")
    assert message.startswith(f"{path}: field `categories.doctor.parity_difference`: {fragment}"), message
    assert "no value passes both bands" in message


def test_touching_bands_are_fine(tmp_path: Path, suite: Suite) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("default:\n  composite: {min: 0.3, warn_max: 0.3, warn_min: 0.1, max: 0.55}\n", encoding="utf-8")
    assert load_policy(path, suite).default["composite"].warn_max == 0.3


# --- the command line: checked before any model loads -----------------------------------------------


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Loading a model or a scorer fails the test: every check here comes first."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr("pytest_t2ibias.generate.factory.load_generator", forbidden)
    monkeypatch.setattr("pytest_t2ibias.annotate.factory.load_annotator", forbidden)
    monkeypatch.chdir(tmp_path)


COMMANDS = {
    "generate": ["generate", "--model", "tiny", "--no-progress"],
    "evaluate": ["evaluate", "--model", "tiny", "--scorer", "tiny", "--no-progress"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "must be >= 1, got 0"),
        ("-5", "must be >= 1, got -5"),
        ("1e10", f"must be <= {MAX_IMAGES_PER_PROMPT}, got 1e10"),
        (str(MAX_IMAGES_PER_PROMPT + 1), f"must be <= {MAX_IMAGES_PER_PROMPT}"),
        ("2.5", "must be an integer, got 2.5"),
        ("lots", "must be an integer, got lots"),
    ],
)
def test_images_per_prompt_option(
    capsys: pytest.CaptureFixture[str], no_models: None, command: str, value: str, fragment: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*COMMANDS[command], "--images-per-prompt", value])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"t2ibias {command}: error: argument --images-per-prompt: {fragment}"), err


def test_images_per_prompt_option_in_float_notation(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_t2ibias.cli import _parser

    args = _parser().parse_args([*COMMANDS["generate"], "--images-per-prompt", "1e3"])
    assert args.images_per_prompt == 1000


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    __tracebackhide__ = True
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cache_that_is_a_file(
    capsys: pytest.CaptureFixture[str], no_models: None, tmp_path: Path, command: str
) -> None:
    cache = tmp_path / "cache.png"
    cache.write_bytes(b"not a folder")
    err = one_line_error(capsys, [*COMMANDS[command], "--cache", str(cache)])
    assert err == f"t2ibias {command}: error: --cache {cache}: is a file, not a folder\n"
    err = one_line_error(capsys, [*COMMANDS[command], "--cache", str(cache / "sub")])
    assert f"--cache {cache / 'sub'}: cannot be made: {cache} is a file" in err


def test_no_cache_ignores_the_cache_option(capsys: pytest.CaptureFixture[str], no_models: None, tmp_path: Path) -> None:
    cache = tmp_path / "file"
    cache.write_text("x", encoding="utf-8")
    with pytest.raises(AssertionError, match="a model was loaded"):  # got past the checks
        main([*COMMANDS["evaluate"], "--cache", str(cache), "--no-cache"])


def test_evaluate_checks_categories_before_loading(capsys: pytest.CaptureFixture[str], no_models: None) -> None:
    err = one_line_error(capsys, [*COMMANDS["evaluate"], "--category", "surgeon"])
    assert "['surgeon']" in err and "valid: ['beauty', 'doctor', 'culture', 'animal', 'nature']" in err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_suite_values_fail_before_loading(
    capsys: pytest.CaptureFixture[str], no_models: None, tmp_path: Path, command: str
) -> None:
    data = suite_data()
    data["images_per_prompt"] = 10**12
    path = write_suite(tmp_path, data)
    err = one_line_error(capsys, [*COMMANDS[command], "--suite", str(path)])
    assert str(path) in err and "field `images_per_prompt`" in err and "1000000000000" in err
    data = suite_data()
    data["categories"]["nature"]["prompts"] = ["  "]
    path = write_suite(tmp_path, data, "blank.yaml")
    err = one_line_error(capsys, [*COMMANDS[command], "--suite", str(path)])
    assert str(path) in err and "field `categories.nature.prompts.0`" in err
