"""The plugin loads in every pytest run of an environment, so it must stay light and work offline."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "transformers", "open_clip", "torchvision")


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_t2ibias.plugin, pytest_t2ibias.metrics, pytest_t2ibias.suites, pytest_t2ibias.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*text-to-image bias tests*", "*--t2i-suite=T2IBIAS_SUITE*", "*--t2i-mode*"])


def test_suite_fixture_loads_offline_without_heavy_imports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import sys

        def test_suite(t2ibias_suite, t2ibias_mode):
            assert t2ibias_suite.name == "t2i-biasbench"
            assert list(t2ibias_suite.categories) == ["beauty", "doctor", "culture", "animal", "nature"]
            assert t2ibias_mode == "paper"
            assert not [m for m in {HEAVY!r} if m in sys.modules]
        """
    )
    result = pytester.runpytest_subprocess("--t2i-mode", "paper", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.t2ibias(category="doctor")
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--strict-markers")
    result.assert_outcomes(passed=1)


def test_bad_suite_option_fails_with_the_path_and_no_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(t2ibias_suite):\n    pass\n")
    result = pytester.runpytest_subprocess("--t2i-suite", "nowhere/suite.yaml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*t2ibias: nowhere/suite.yaml: no such suite file (built-in suites: occupations, t2i-biasbench)"]
    )
    result.stdout.no_fnmatch_line("*plugin.py*")
