"""The pytest plugin: options, markers, hooks and fixtures only.

The settings are read once into :mod:`pytest_t2ibias.settings`, per-run state lives in
:mod:`pytest_t2ibias.session`, the model and scorer the settings name are built in
:mod:`pytest_t2ibias.stages`, the baseline store and the per-test gate in :mod:`pytest_t2ibias.snapshot`,
the judging itself in :mod:`pytest_t2ibias.judge`. Each fixture is a few lines over the session.

Loaded in every pytest run of an environment where the package is installed, so this module imports
nothing heavy: torch, diffusers, transformers and open_clip load only inside the fixtures that need them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from pytest_t2ibias.session import SESSION_PLUGIN, T2IBiasSession, get_session, in_ci
from pytest_t2ibias.settings import Settings, add_options
from pytest_t2ibias.stages import cuda_available, skip_at_test

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.judge.policy import Policy
    from pytest_t2ibias.metrics.aggregate import Aggregates
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

__all__ = ["SESSION_PLUGIN", "Settings", "T2IBiasSession"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "t2ibias(category, suite=None): a text-to-image bias test of one category of a suite."
    )
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one unless --t2i-device=cpu.")
    # every setting, the suite and the policy, checked once before any test: one line, not one per test
    session = T2IBiasSession(config, Settings.from_config(config))
    session.check_configured()
    ci = in_ci(os.environ)
    if session.settings.update and ci and not session.settings.force_update:
        raise pytest.UsageError(
            f"t2ibias: refusing to update baselines in a CI job ({ci} is set); approve baselines locally, "
            "or pass --t2i-force-update"
        )
    # every process (xdist workers included) keeps its own state; the image cache is shared on disk
    config.pluginmanager.register(session, SESSION_PLUGIN)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is None:
        return
    if get_session(item.config).settings.device == "cpu":
        return
    if not cuda_available():
        skip_at_test("t2ibias: needs a CUDA device (none here); run with --t2i-device=cpu to run it on the CPU")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """With ``t2ibias_require_gate = true``, a bias test whose body passed without any assertion helper
    judging its result fails: plain asserts are fine, but then no policy or baseline gated the model."""
    yield
    session = get_session(item.config)
    category = session.evaluated.get(item.nodeid)
    if category is not None and item.nodeid not in session.gated and session.settings.require_gate:
        from pytest_t2ibias.report.summary import NOT_GATED

        pytest.fail(
            f"t2ibias: {category}: {NOT_GATED}: the test called no assertion helper (assert_no_regression, "
            "assert_policy, ...) and t2ibias_require_gate = true",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_assertrepr_compare(op: str, left: object, right: object) -> Generator[None, list[Any], list[Any]]:
    """``assert t2ibias_result == snapshot`` failed: the gate's message first (pytest shows the first; syrupy's
    own, also ``tryfirst``, would be a diff of two JSON files)."""
    from pytest_t2ibias.snapshot import snapshot_explanation

    explained = yield
    ours = snapshot_explanation(op, left, right)
    return [ours, *explained] if ours else explained


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def t2ibias_settings(pytestconfig: pytest.Config) -> Settings:
    """The run's settings (every ``--t2i-*`` option over its ``t2ibias_*`` ini value), read and checked once."""
    return get_session(pytestconfig).settings


@pytest.fixture(scope="session")
def t2ibias_mode(pytestconfig: pytest.Config) -> str:
    """The metric mode of this run (``--t2i-mode`` or the ``t2ibias_mode`` ini value)."""
    return get_session(pytestconfig).mode


@pytest.fixture(scope="session")
def t2ibias_suite(pytestconfig: pytest.Config) -> Suite:
    """The prompt suite of this run (``--t2i-suite`` or the ``t2ibias_suite`` ini value)."""
    session = get_session(pytestconfig)
    return session.suite(session.settings.suite)


@pytest.fixture(scope="session")
def t2ibias_generator(pytestconfig: pytest.Config) -> ImageGenerator:
    """The configured model (built on first use); bias tests fail or skip, saying how to configure one,
    when there is none. Override it in a conftest to test a model object: an ``ImageGenerator``, a
    diffusers pipeline or ``fn(prompts, seeds) -> images`` (see docs/own-model.md)."""
    return get_session(pytestconfig).stages.generator()


@pytest.fixture(scope="session")
def t2ibias_scorer(pytestconfig: pytest.Config) -> ImageAnnotator:
    """The configured scorer (annotator). Override it in a conftest with an ``ImageAnnotator``, a mapping
    of precomputed labels or ``fn(images, category) -> labels``."""
    return get_session(pytestconfig).stages.annotator()


@pytest.fixture(scope="session")
def t2ibias_policy(pytestconfig: pytest.Config) -> Policy | None:
    """The threshold policy for the run's suite, or None when the thresholds folder has none."""
    return get_session(pytestconfig).settings_policy()[0]


@pytest.fixture
def t2ibias_evaluate(request: pytest.FixtureRequest) -> Iterator[Callable[..., CategoryResult]]:
    """``evaluate(category, suite=None)``: the category's result, gated by the policy and the test's baseline."""
    session = get_session(request.config)
    handed: list[CategoryResult] = []

    def evaluate(category: str, suite: str | None = None) -> CategoryResult:
        if handed:
            raise ValueError(f"one bias category per test (this test already evaluated {handed[0].category!r})")
        handed.append(session.gated_result(request, category, suite))
        return handed[0]

    yield evaluate
    for result in handed:
        session.close_gate(request.node, result)


@pytest.fixture
def t2ibias_result(request: pytest.FixtureRequest, t2ibias_evaluate: Callable[..., CategoryResult]) -> CategoryResult:
    """The result of the category named by the test's ``@pytest.mark.t2ibias(category=...)`` marker."""
    category, suite = get_session(request.config).marker_of(request.node)
    if category is None:
        pytest.fail(
            f"{request.node.nodeid}: t2ibias_result needs @pytest.mark.t2ibias(category=...) "
            "(or use t2ibias_evaluate(category))",
            pytrace=False,
        )
    return t2ibias_evaluate(category, suite)


@pytest.fixture
def t2ibias_aggregate(request: pytest.FixtureRequest) -> Iterator[Aggregates]:
    """The aggregates across every category of the suite that declares a reference (the suite of the
    test's ``@pytest.mark.t2ibias(suite=...)`` marker, else the run's), gated by the policy's ``aggregate``
    rules; their hard bounds are in the run's one family, beside the categories' checks."""
    session = get_session(request.config)
    found = session.gated_aggregates(request)
    yield found
    session.close_gate(request.node, found)
