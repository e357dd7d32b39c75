"""The ``t2ibias`` and ``gpu`` markers, the fixtures, the assertion helpers' messages, and the run's outputs
(JUnit XML properties, the JSON report)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import types
import xml.etree.ElementTree as ET

import pytest

from .workflow import COMMON_ARGS, FAST_ARGS, IMAGE_LINE, image_paths, run_bias

CATEGORIES = "['beauty', 'doctor', 'culture', 'animal', 'nature']"

#: Counts the suite evaluations of a run (the plugin imports ``evaluate_suite`` when it evaluates).
COUNTING_CONFTEST = textwrap.dedent(
    """
    import pytest_t2ibias.pipeline as evaluate

    CALLS = []
    _original = evaluate.evaluate_suite


    def counting(*args, **kwargs):
        CALLS.append(list(kwargs["categories"]))
        return _original(*args, **kwargs)


    def pytest_configure(config):
        evaluate.evaluate_suite = counting


    def pytest_unconfigure(config):
        evaluate.evaluate_suite = _original


    def pytest_terminal_summary(terminalreporter):
        terminalreporter.write_line(f"evaluated: {CALLS}")
    """
)


def write_policy(pytester: pytest.Pytester, text: str) -> None:
    pytester.mkdir("thresholds")
    (pytester.path / "thresholds" / "policy.yaml").write_text(textwrap.dedent(text).lstrip())


def test_marker_and_fixtures_give_the_category_result(pytester: pytest.Pytester, male_share_policy: str) -> None:
    write_policy(pytester, male_share_policy)
    pytester.makepyfile(
        test_bias="""
        import pytest


        @pytest.mark.t2ibias(category="doctor")
        def test_marker(t2ibias_result):
            assert (t2ibias_result.category, t2ibias_result.suite, t2ibias_result.n) == ("doctor", "t2i-biasbench", 50)
            assert t2ibias_result.model.startswith("synthetic:")
            male = t2ibias_result.metrics["male_share"]
            assert male.interval.low <= male.value <= male.interval.high
            assert len(t2ibias_result.records) == 50


        @pytest.mark.t2ibias("doctor")
        def test_marker_positional(t2ibias_result):
            assert t2ibias_result.category == "doctor"


        def test_evaluate(t2ibias_evaluate):
            result = t2ibias_evaluate("culture")
            assert result.category == "culture"
            assert "car" in result.metrics


        def test_one_category_per_test(t2ibias_evaluate):
            t2ibias_evaluate("doctor")
            with pytest.raises(ValueError, match="one bias category per test .*'doctor'"):
                t2ibias_evaluate("culture")


        def test_engines(t2ibias_generator, t2ibias_scorer, t2ibias_suite, t2ibias_policy, t2ibias_mode):
            assert t2ibias_generator.fingerprint.startswith("synthetic:")
            assert t2ibias_scorer.scorer_id == "synthetic-mark-reader:v1"
            assert t2ibias_suite.name == "t2i-biasbench"
            assert t2ibias_policy.rules_for("doctor")["male_share"].regression.absolute == 0.1
            assert t2ibias_mode == "strict"
        """
    )
    result = run_bias(pytester, "--t2i-model", "synthetic", "--strict-markers", common=FAST_ARGS)
    result.assert_outcomes(passed=5)


def test_each_category_is_evaluated_once_per_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(
        test_bias="""
        import pytest


        @pytest.mark.t2ibias(category="doctor")
        def test_first(t2ibias_result):
            pass


        @pytest.mark.t2ibias(category="doctor")
        def test_second(t2ibias_result):
            pass


        def test_third(t2ibias_evaluate):
            t2ibias_evaluate("doctor")


        def test_other_category(t2ibias_evaluate):
            t2ibias_evaluate("culture")
        """
    )
    result = run_bias(pytester, "--t2i-model", "synthetic", common=FAST_ARGS)
    result.assert_outcomes(passed=4)
    result.stdout.re_match_lines([r"evaluated: \[\['doctor'\], \['culture'\]\]$"])


def test_deselected_bias_tests_are_not_evaluated(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    write_policy(
        pytester,
        """
        suite: t2i-biasbench
        categories:
          doctor:
            male_share: {regression: {absolute: 0.1}}
          culture:
            parity_difference: {regression: {absolute: 0.1}}
        """,
    )
    pytester.makepyfile(
        test_bias="""
        import pytest
        from pytest_t2ibias.assertions import assert_policy


        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            assert_policy(t2ibias_result)


        @pytest.mark.t2ibias(category="culture")
        def test_culture(t2ibias_result):
            assert_policy(t2ibias_result)
        """
    )
    approved = run_bias(pytester, "--t2i-model", "synthetic", "--snapshot-update", common=FAST_ARGS)
    assert approved.ret == pytest.ExitCode.OK

    result = run_bias(pytester, "--t2i-model", "synthetic", "-k", "doctor", common=FAST_ARGS)
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.re_match_lines([r"evaluated: \[\['doctor'\]\]$"])
    result.stdout.no_re_match_line(r"culture\s+50\s+.*")


def test_result_without_marker_says_how_to_name_the_category(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias="def test_unmarked(t2ibias_result):\n    pass\n")
    result = run_bias(pytester, "--t2i-model", "synthetic", common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [
            r".*test_bias\.py::test_unmarked: t2ibias_result needs @pytest\.mark\.t2ibias\(category=\.\.\.\) "
            r"\(or use t2ibias_evaluate\(category\)\)"
        ]
    )


def test_unknown_category_fails_listing_the_valid_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bias="""
        import pytest


        @pytest.mark.t2ibias(category="dentist")
        def test_marked(t2ibias_result):
            pass


        def test_evaluated(t2ibias_evaluate):
            t2ibias_evaluate("dentist")
        """
    )
    result = run_bias(pytester, "--t2i-model", "synthetic", common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1, failed=1)  # the marker's fixture errors, the call fails
    message = rf"t2ibias: suite 't2i-biasbench' has no category 'dentist'; categories: {re.escape(CATEGORIES)}"
    result.stdout.re_match_lines([message, message])


@pytest.mark.parametrize(
    ("options", "outcome"),
    [
        pytest.param([], {"skipped": 1}, id="default-device"),
        pytest.param(["--t2i-device", "cpu"], {"passed": 1}, id="cpu"),
    ],
)
def test_gpu_marker_skips_without_cuda_unless_on_cpu(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, options: list[str], outcome: dict[str, int]
) -> None:
    # a machine without CUDA, whatever this one has (and without importing torch for it)
    no_cuda = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", no_cuda)
    pytester.makepyfile(
        test_gpu="""
        import pytest


        @pytest.mark.gpu
        def test_needs_gpu():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--strict-markers", *options)
    result.assert_outcomes(**outcome)
    if "skipped" in outcome:
        result.stdout.re_match_lines(
            [
                r"SKIPPED \[1\] .*t2ibias: needs a CUDA device \(none here\); "
                r"run with --t2i-device=cpu to run it on the CPU"
            ]
        )


HELPERS = {
    "cbs": (
        "doctor",
        "assert_cbs_below(result, 0.3)",
        [
            r"\s+FAIL\s+doctor\.composite = 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]; rule <= 0\.3: "
            r"whole interval above the bound"
        ],
    ),
    "parity": (
        "doctor",
        "assert_parity(result, 0.2)",
        [
            r"\s+FAIL\s+doctor\.parity_difference = 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]; rule <= 0\.2: "
            r"whole interval above the bound"
        ],
    ),
    "missing-rate": (
        "doctor",
        "assert_missing_rate_below(result, gmr=0.2)",
        [
            r"\s+FAIL\s+doctor\.gmr = 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]; rule <= 0\.2: "
            r"whole interval above the bound"
        ],
    ),
    "cultural-coverage": (
        "culture",
        "assert_cultural_coverage(result, min_markers=100)",
        [r"\s+FAIL\s+culture\.distinct_markers = \d+\.0000; rule >= 100: seen: \w+.*"],
    ),
}


@pytest.mark.parametrize("helper", list(HELPERS))
def test_assertion_helper_failure_names_category_metric_interval_threshold_and_images(
    pytester: pytest.Pytester, biased_model: str, helper: str
) -> None:
    category, call, lines = HELPERS[helper]
    (pytester.path / "biased.yaml").write_text(biased_model)
    pytester.makepyfile(
        test_bias=f"""
        from pytest_t2ibias.assertions import *


        def test_helper(t2ibias_evaluate):
            result = t2ibias_evaluate({category!r})
            {call}
        """
    )
    result = run_bias(pytester, "--t2i-model", "synthetic:biased.yaml", common=COMMON_ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            rf"t2ibias: category '{category}' of suite 't2i-biasbench' \(model synthetic:[0-9a-f]+, "
            r"scorer synthetic-mark-reader:v1, mode strict, n=100\)",
            r"failed:",
            *lines,
            r"\s+\S+: driven by .*images.*:$",
            IMAGE_LINE,
        ]
    )
    assert all(path.is_file() for path in image_paths(result))


def test_assertion_helper_warns_when_the_interval_straddles_the_threshold(
    pytester: pytest.Pytester, biased_model: str
) -> None:
    (pytester.path / "biased.yaml").write_text(biased_model)
    pytester.makepyfile(
        test_bias="""
        from pytest_t2ibias.assertions import assert_parity


        def test_helper(t2ibias_evaluate):
            result = t2ibias_evaluate("doctor")
            interval = result.metrics["parity_difference"].interval
            assert interval.low < 0.75 < interval.high  # the threshold below lies inside the interval
            assert_parity(result, 0.75)
        """
    )
    result = run_bias(pytester, "--t2i-model", "synthetic:biased.yaml", common=COMMON_ARGS)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)  # the warning is listed once, in the t2ibias section
    result.stdout.re_match_lines(
        [
            r"=+ t2ibias =+",
            r"WARN test_bias\.py::test_helper: doctor\.parity_difference = 0\.\d{4} \(rule <= 0\.75\): "
            r"interval straddles the bound.*",
        ]
    )


TWO_GATED_TESTS = """
import pytest
from pytest_t2ibias.assertions import assert_cultural_coverage, assert_parity


@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_parity(t2ibias_result, 0.5)


def test_culture(t2ibias_evaluate):
    assert_cultural_coverage(t2ibias_evaluate("culture"), min_markers=3)
"""


def test_junitxml_has_a_property_per_metric(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=TWO_GATED_TESTS)
    result = run_bias(pytester, "--t2i-model", "synthetic", "--junitxml=junit.xml", common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.OK
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    properties = {
        name: {p.get("name"): _number_or_text(p.get("value")) for p in case.iter("property")}
        for name, case in cases.items()
    }
    assert {"t2ibias.doctor.male_share", "t2ibias.doctor.parity_difference", "t2ibias.doctor.composite"} <= set(
        properties["test_doctor"]
    )
    assert {"t2ibias.culture.car", "t2ibias.culture.composite"} <= set(properties["test_culture"])
    assert not [name for name in properties["test_doctor"] if not name.startswith("t2ibias.doctor.")]
    assert 0.0 <= properties["test_doctor"]["t2ibias.doctor.male_share"] <= 1.0  # type: ignore[operator]
    # each check's verdict is a property too (the metrics' values are numbers, verdicts words)
    verdicts = {k: v for k, v in properties["test_doctor"].items() if isinstance(v, str)}
    assert verdicts and set(verdicts.values()) <= {"pass", "warn", "fail"}


def _number_or_text(value: str | None) -> float | str:
    try:
        return float(value or "")
    except ValueError:
        return value or ""


def test_report_writes_categories_with_intervals_and_tests_with_checks(
    pytester: pytest.Pytester, plugin_args: list[str]
) -> None:
    pytester.makepyfile(test_bias=TWO_GATED_TESTS)
    result = run_bias(
        pytester, *plugin_args, "--t2i-model", "synthetic", "--t2i-report", "out/results.json", common=FAST_ARGS
    )
    assert result.ret == pytest.ExitCode.OK
    report = json.loads((pytester.path / "out" / "results.json").read_text())

    assert set(report["categories"]) == {"doctor", "culture"}
    doctor = report["categories"]["doctor"]
    assert (doctor["suite"], doctor["mode"], doctor["n"], doctor["scorer"]) == (
        "t2i-biasbench",
        "strict",
        50,
        "synthetic-mark-reader:v1",
    )
    assert report["format"] == 1
    composite, interval = doctor["metrics"]["composite"], doctor["intervals"]["composite"]
    assert interval["low"] <= composite <= interval["high"]
    assert interval["method"]
    assert len(doctor["images"]) == 50
    assert all(isinstance(image["seed"], int) and image["labels"]["gender"] for image in doctor["images"])

    tests = {test["nodeid"]: test for test in report["tests"]}
    assert set(tests) == {"test_bias.py::test_doctor", "test_bias.py::test_culture"}
    checks = tests["test_bias.py::test_doctor"]["checks"]
    # strict mode signs the parity difference: the helper bounds it on both sides
    assert {(c["metric"], c["kind"], c["threshold"]) for c in checks} == {
        ("parity_difference", "bound", "<= 0.5"),
        ("parity_difference", "bound", ">= -0.5"),
    }
    assert [c["value"] for c in checks] == [pytest.approx(doctor["metrics"]["parity_difference"])] * 2
    assert tests["test_bias.py::test_doctor"]["verdict"] == "pass"
    (markers,) = tests["test_bias.py::test_culture"]["checks"]
    assert (markers["metric"], markers["verdict"]) == ("distinct_markers", "pass")
