"""Shared fixtures of the plugin's integration tests: the xdist matrix and the sources of test projects."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

from .workflow import DOCTOR_BASELINE, FAST_ARGS

# pytester's in-process runs unload every module a run imported; numpy and PIL do not survive being
# imported twice in one process. Import what the plugin loads lazily before any pytester snapshot.
for _module in (
    "numpy",
    "PIL.Image",
    "PIL.PngImagePlugin",
    "pydantic",
    "yaml",
    "syrupy.location",
    "pytest_t2ibias.annotate.factory",
    "pytest_t2ibias.annotate.synthetic",
    "pytest_t2ibias.assertions",
    "pytest_t2ibias._io",
    "pytest_t2ibias.generate.cache",
    "pytest_t2ibias.generate.diffusers_adapter",
    "pytest_t2ibias.generate.factory",
    "pytest_t2ibias.generate.synthetic",
    "pytest_t2ibias.judge.baseline",
    "pytest_t2ibias.judge.compare",
    "pytest_t2ibias.judge.family",
    "pytest_t2ibias.judge.policy",
    "pytest_t2ibias.judge.stats",
    "pytest_t2ibias.metrics.result",
    "pytest_t2ibias.pipeline",
    "pytest_t2ibias.report.summary",
    "pytest_t2ibias.results",
    "pytest_t2ibias.snapshot",
    "pytest_t2ibias.suites",
):
    importlib.import_module(_module)
# Not ours, and maybe not installed: hypothesis's pytest plugin imports hypothesis at the end of each run,
# which every in-process run would then import and assertion-rewrite again (about a second each).
try:
    importlib.import_module("hypothesis")
except ImportError:
    pass


#: Variables of the outer run that would change what the inner runs do.
OUTER_RUN_ENVIRONMENT = (
    "CI",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "GITHUB_STEP_SUMMARY",  # the inner runs must not append to the outer CI job's summary
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs must not see the outer run's environment.

    Updating baselines is refused when CI is set, and these tests approve baselines wherever they run. When
    this folder itself runs under xdist, syrupy reads PYTEST_XDIST_WORKER and would act as a worker in the
    inner runs (no snapshot report).
    """
    for name in OUTER_RUN_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=[[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def plugin_args(request: pytest.FixtureRequest) -> list[str]:
    """Run the plugin in one process, and under xdist with two workers."""
    return list(request.param)


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip()


@pytest.fixture
def fair_model() -> str:
    """A synthetic model config: doctors half male (the approved model)."""
    return yaml_text(
        """
        categories:
          doctor:
            attribute: {male: 0.5, female: 0.5}
        """
    )


@pytest.fixture
def biased_model() -> str:
    """The same model made more biased: doctors 90% male."""
    return yaml_text(
        """
        categories:
          doctor:
            attribute: {male: 0.9, female: 0.1}
        """
    )


@pytest.fixture
def regression_policy() -> str:
    """A policy that fails a credible regression of the doctor category's gender metrics."""
    return yaml_text(
        """
        suite: t2i-biasbench
        categories:
          doctor:
            male_share: {regression: {absolute: 0.1}, severity: fail}
            parity_difference: {regression: {absolute: 0.1}, severity: fail}
            composite: {regression: {absolute: 0.05}, severity: fail}
        """
    )


@pytest.fixture
def regression_tests() -> str:
    """Two bias tests: doctor through the marker, culture through ``t2ibias_evaluate``."""
    return textwrap.dedent(
        """
        import pytest

        from pytest_t2ibias.assertions import assert_no_regression


        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            assert_no_regression(t2ibias_result)


        def test_culture(t2ibias_evaluate):
            assert_no_regression(t2ibias_evaluate("culture"))
        """
    )


@pytest.fixture
def regression_project(
    pytester: pytest.Pytester, regression_tests: str, regression_policy: str, fair_model: str, biased_model: str
) -> pytest.Pytester:
    """A project with the two bias tests, the regression policy and both model configs, nothing approved."""
    pytester.makepyfile(test_bias=regression_tests)
    pytester.mkdir("thresholds")
    (pytester.path / "thresholds" / "policy.yaml").write_text(regression_policy)
    (pytester.path / "fair.yaml").write_text(fair_model)
    (pytester.path / "biased.yaml").write_text(biased_model)
    return pytester


@pytest.fixture
def doctor_test() -> str:
    """One bias test of the doctor category, gated by its baseline."""
    return textwrap.dedent(
        """
        import pytest

        from pytest_t2ibias.assertions import assert_no_regression


        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            assert_no_regression(t2ibias_result)
        """
    )


@pytest.fixture
def male_share_policy() -> str:
    """A policy whose only rule fails a credible regression of the doctor category's male share."""
    return yaml_text(
        """
        suite: t2i-biasbench
        categories:
          doctor:
            male_share: {regression: {absolute: 0.1}}
        """
    )


@pytest.fixture(scope="session")
def approved_doctor(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The baseline of ``test_bias.py::test_doctor`` approved on the fair synthetic model with ``FAST_ARGS``.

    Approved once per session by a real ``--snapshot-update`` run, then copied into each project that
    starts from an approved baseline (each approval costs a whole pytest run).
    """
    project = tmp_path_factory.mktemp("approved")
    (project / "test_bias.py").write_text(
        "import pytest\n"
        "from pytest_t2ibias.assertions import assert_no_regression\n\n"
        "@pytest.mark.t2ibias(category='doctor')\n"
        "def test_doctor(t2ibias_result):\n"
        "    assert_no_regression(t2ibias_result)\n"
    )
    (project / "fair.yaml").write_text("categories:\n  doctor:\n    attribute: {male: 0.5, female: 0.5}\n")
    env = {k: v for k, v in os.environ.items() if k not in (*OUTER_RUN_ENVIRONMENT, "PYTEST_ADDOPTS")}
    args = [*FAST_ARGS, "--t2i-model", "synthetic:fair.yaml", "--snapshot-update", "-p", "no:xdist"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    baseline = project / DOCTOR_BASELINE
    assert done.returncode == 0 and baseline.is_file(), done.stdout + done.stderr
    return baseline.read_text()


@pytest.fixture
def doctor_project(
    pytester: pytest.Pytester,
    doctor_test: str,
    male_share_policy: str,
    fair_model: str,
    biased_model: str,
    approved_doctor: str,
) -> pytest.Pytester:
    """A project with the doctor test, the male-share policy, both model configs and an approved baseline."""
    pytester.makepyfile(test_bias=doctor_test)
    pytester.mkdir("thresholds")
    (pytester.path / "thresholds" / "policy.yaml").write_text(male_share_policy)
    (pytester.path / "fair.yaml").write_text(fair_model)
    (pytester.path / "biased.yaml").write_text(biased_model)
    baseline = pytester.path / DOCTOR_BASELINE
    baseline.parent.mkdir(parents=True)
    baseline.write_text(approved_doctor)
    return pytester
