"""Configuring the model and the run: ``--t2i-*`` options, ``t2ibias_*`` ini settings, and their errors."""

from __future__ import annotations

import re
import textwrap

import pytest

from .workflow import run_bias

NO_CACHE = ("-p", "no:cacheprovider", "--t2i-cache", "none")

#: Says what it got, so that the outer test can check which settings won.
REPORTING_TEST = textwrap.dedent(
    """
    import pytest


    @pytest.mark.t2ibias(category="doctor")
    def test_doctor(t2ibias_result, t2ibias_generator, t2ibias_mode):
        print(f"\\nRESULT n={t2ibias_result.n} mode={t2ibias_mode} model={t2ibias_generator.fingerprint}")
    """
)

INI_FILES = {
    "pytest.ini": """
        [pytest]
        t2ibias_model = synthetic
        t2ibias_images_per_prompt = 20
        t2ibias_mode = paper
        t2ibias_cache = none
        """,
    "pyproject.toml": """
        [tool.pytest.ini_options]
        t2ibias_model = "synthetic"
        t2ibias_images_per_prompt = 20
        t2ibias_mode = "paper"
        t2ibias_cache = "none"
        """,
}


UNCONFIGURED_TESTS = """
import pytest

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    raise AssertionError("must not run without a model")

def test_culture(t2ibias_evaluate):
    t2ibias_evaluate("culture")
    raise AssertionError("must not run without a model")

def test_suite_needs_no_model(t2ibias_suite):
    assert "doctor" in t2ibias_suite.categories
"""

#: The one line an unconfigured bias test fails (or skips) with: which settings pytest read, and what to do.
NO_MODEL = (
    r"t2ibias: no model configured: pytest read its settings from {where}, which sets no t2ibias_model; run pytest "
    r"on the folder of the bias tests \(`pytest bias_tests`\), set t2ibias_model there, or pass --t2i-model=\.\.\.; to "
    r"skip bias tests when no model is configured, set t2ibias_unconfigured = skip"
)


def test_without_model_bias_tests_fail_saying_which_ini_pytest_used(pytester: pytest.Pytester) -> None:
    """A model repository whose root settings are not the bias tests': plain `pytest` must not be green."""
    pytester.makeini("[pytest]\naddopts = -ra\n")
    pytester.makepyfile(test_bias=UNCONFIGURED_TESTS)
    result = pytester.runpytest(*NO_CACHE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1, failed=1, passed=1)  # the marker's fixture errors, the call fails
    where = rf"ini file {re.escape(str(pytester.path / 'tox.ini'))}"  # what pytester.makeini writes
    result.stdout.re_match_lines([rf"E?\s*{NO_MODEL.format(where=where)}"])
    result.stdout.no_re_match_line(r".*AssertionError: must not run.*")


def test_without_model_and_ini_the_message_names_the_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=UNCONFIGURED_TESTS)
    result = pytester.runpytest(*NO_CACHE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    where = rf"no ini file \(rootdir {re.escape(str(pytester.path))}\)"
    result.stdout.re_match_lines([rf"E?\s*{NO_MODEL.format(where=where)}"])


@pytest.mark.parametrize("how", ["option", "ini"])
def test_skipping_unconfigured_bias_tests_is_explicit_and_counted(pytester: pytest.Pytester, how: str) -> None:
    pytester.makepyfile(test_bias=UNCONFIGURED_TESTS)
    if how == "ini":
        pytester.makeini("[pytest]\nt2ibias_unconfigured = skip\n")
        result = pytester.runpytest(*NO_CACHE, "-rs")
    else:
        result = pytester.runpytest(*NO_CACHE, "-rs", "--t2i-unconfigured", "skip")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=2, passed=1)
    result.stdout.re_match_lines(
        [r"2 bias tests did not run:", r"  SKIPPED test_bias\.py::test_\w+: t2ibias: no model.*"]
    )


@pytest.mark.parametrize("ini_file", list(INI_FILES))
def test_ini_settings_are_used_and_the_command_line_overrides_them(pytester: pytest.Pytester, ini_file: str) -> None:
    pytester.makefile(ini_file[ini_file.index(".") :], **{ini_file.split(".")[0]: textwrap.dedent(INI_FILES[ini_file])})
    pytester.makepyfile(test_bias=REPORTING_TEST)

    from_ini = pytester.runpytest("-p", "no:cacheprovider", "-s")
    assert from_ini.ret == pytest.ExitCode.OK
    from_ini.stdout.re_match_lines([r"RESULT n=20 mode=paper model=synthetic:[0-9a-f]+", r".*mode paper"])

    overridden = pytester.runpytest(
        "-p", "no:cacheprovider", "-s", "--t2i-images-per-prompt", "30", "--t2i-mode", "strict"
    )
    assert overridden.ret == pytest.ExitCode.OK
    overridden.stdout.re_match_lines([r"RESULT n=30 mode=strict model=synthetic:[0-9a-f]+", r".*mode strict"])


@pytest.mark.parametrize("where", ["option", "ini"])
def test_bad_mode_is_a_usage_error(pytester: pytest.Pytester, where: str) -> None:
    pytester.makepyfile(test_bias=REPORTING_TEST)
    if where == "ini":
        pytester.makeini("[pytest]\nt2ibias_mode = fast\n")
        result = pytester.runpytest(*NO_CACHE, "--t2i-model", "synthetic")
    else:
        result = pytester.runpytest(*NO_CACHE, "--t2i-model", "synthetic", "--t2i-mode", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([r"ERROR: t2ibias: --t2i-mode / t2ibias_mode must be 'paper' or 'strict', got 'fast'"])


def test_missing_suite_file_fails_naming_the_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=REPORTING_TEST)
    result = run_bias(pytester, "--t2i-model", "synthetic", "--t2i-suite", "suites/mine.yaml", common=NO_CACHE)
    # checked once, before any test: one line, not one failure per test
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines(
        [r"ERROR: t2ibias: suites/mine\.yaml: no such suite file \(built-in suites: occupations, t2i-biasbench\)$"]
    )
    result.stdout.no_re_match_line(r".*RESULT.*")


def test_non_integer_images_per_prompt_names_the_setting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=REPORTING_TEST)
    result = run_bias(pytester, "--t2i-model", "synthetic", "--t2i-images-per-prompt", "ten", common=NO_CACHE)
    assert result.ret != pytest.ExitCode.OK
    result.stderr.re_match_lines([r".*t2ibias: t2ibias_images_per_prompt must be an integer, got 'ten'"])


def test_non_integer_images_per_prompt_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=REPORTING_TEST)
    result = run_bias(pytester, "--t2i-model", "synthetic", "--t2i-images-per-prompt", "ten", common=NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(
    ("option", "make", "message"),
    [
        ("--t2i-report=out", "folder", r"--t2i-report / t2ibias_report must be a file, \S+/out is a folder"),
        ("--t2i-cache=cache", "file", r"--t2i-cache / t2ibias_cache must be a folder, \S+/cache is a file"),
        ("--t2i-images-per-prompt=0", None, r"t2ibias_images_per_prompt must be between 1 and 100000, got 0"),
        ("--t2i-images-per-prompt=10000000000", None, r"t2ibias_images_per_prompt must be between 1 and 100000, .*"),
    ],
)
def test_bad_paths_and_sizes_are_one_usage_error_before_any_test(
    pytester: pytest.Pytester, option: str, make: str | None, message: str
) -> None:
    pytester.makepyfile(test_bias=REPORTING_TEST)
    target = option.split("=", 1)[1]
    if make == "folder":
        pytester.mkdir(target)
    elif make == "file":
        (pytester.path / target).write_text("not a folder")
    result = pytester.runpytest("-p", "no:cacheprovider", "--t2i-model=synthetic", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([rf"ERROR: t2ibias: {message}$"])
    result.stdout.no_re_match_line(r".*RESULT.*")
