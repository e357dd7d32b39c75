"""Configuring the model and the run: ``--t2i-*`` options, ``t2ibias_*`` ini settings, and their errors."""

from __future__ import annotations

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


def test_without_model_bias_tests_skip_saying_how_to_configure_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bias="""
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
    )
    result = pytester.runpytest(*NO_CACHE, "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=2, passed=1)
    message = (
        r"t2ibias: no model configured; pass --t2i-model \(a diffusers hub id, a local pipeline folder, 'tiny' or "
        r"'synthetic'\) or set `t2ibias_model` under \[tool\.pytest\.ini_options\]"
    )
    result.stdout.re_match_lines([rf"SKIPPED \[1\] test_bias\.py:\d+: {message}", rf"SKIPPED \[1\] .*: {message}"])
    result.stdout.no_re_match_line(r"=+ t2ibias =+")  # nothing evaluated, no summary


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
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [r".*t2ibias: suites/mine\.yaml: no such suite file \(built-in suites: t2i-biasbench\)"]
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
