"""The pytest plugin: options, markers, hooks and fixtures only.

Per-run state lives in :mod:`pytest_t2ibias.session`, the syrupy glue and the per-test gate in
:mod:`pytest_t2ibias.snapshot`, the judging itself in :mod:`pytest_t2ibias.judge`.

Loaded in every pytest run of an environment where the package is installed, so this module imports
nothing heavy: torch, diffusers, transformers and open_clip load only inside the fixtures that need them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_t2ibias.masking import mask_credentials
from pytest_t2ibias.session import (
    SESSION_PLUGIN,
    T2IBiasSession,
    TestOutcome,
    fail_masked,
    get_session,
    in_ci,
    int_setting,
    marker_category,
    setting,
    skip_at_test,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.judge.policy import Policy
    from pytest_t2ibias.judge.verdicts import Check
    from pytest_t2ibias.metrics.aggregate import Aggregates
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

__all__ = ["SESSION_PLUGIN", "T2IBiasSession", "setting"]

#: (option, ini name, help, default): every setting under one prefix; the command line wins over the ini.
SETTINGS: list[tuple[str, str, str, str | None]] = [
    ("--t2i-model", "t2ibias_model", "Model: diffusers hub id, local pipeline folder, 'tiny' or 'synthetic'.", None),
    (
        "--t2i-scorer",
        "t2ibias_scorer",
        "Scorer: tiny, open_clip:ARCH/PRETRAINED, hf:ID, vqa:ID, captioner:ID, "
        "labels:PATH, synthetic (default: open_clip:ViT-L-14/openai; synthetic for the synthetic model, tiny for "
        "the tiny one).",
        None,
    ),
    (
        "--t2i-scorer-card",
        "t2ibias_scorer_card",
        "Scorer card JSON (t2ibias audit-scorer): correct the metrics for the scorer's errors.",
        None,
    ),
    ("--t2i-revision", "t2ibias_revision", "Hub revision (branch, tag or commit) of the model.", None),
    ("--t2i-suite", "t2ibias_suite", "Prompt suite: a built-in name or a YAML path.", "t2i-biasbench"),
    ("--t2i-images-per-prompt", "t2ibias_images_per_prompt", "Images per prompt (default: the suite's).", None),
    ("--t2i-device", "t2ibias_device", "Device: auto (CUDA when present), cpu, cuda or cuda:N.", "auto"),
    ("--t2i-dtype", "t2ibias_dtype", "Dtype: auto (fp16 on CUDA), fp32, fp16 or bf16.", "auto"),
    ("--t2i-steps", "t2ibias_steps", "Inference steps of the diffusion model.", None),
    ("--t2i-batch-size", "t2ibias_batch_size", "Images per pipeline call.", None),
    (
        "--t2i-cache",
        "t2ibias_cache",
        "Image cache folder or fsspec URL (s3://, gs://, file://); default: .t2ibias_cache in the rootdir; "
        "'none' disables.",
        None,
    ),
    (
        "--t2i-lock-timeout",
        "t2ibias_lock_timeout",
        "Seconds to wait in all for image batches another process (an xdist worker, a second run) is "
        "generating in the same cache, then fail naming the lock and its holder (default 600).",
        "600",
    ),
    ("--t2i-mode", "t2ibias_mode", "Metric mode: strict (default, for gating) or paper.", "strict"),
    (
        "--t2i-thresholds",
        "t2ibias_thresholds",
        "Folder of threshold policies (default: thresholds/ in the rootdir).",
        None,
    ),
    ("--t2i-report", "t2ibias_report", "Write the run's results as JSON to this path.", None),
    (
        "--t2i-html",
        "t2ibias_html",
        "Write a self-contained HTML report (image grids, flips against the baseline) to this path.",
        None,
    ),
    (
        "--t2i-allow-pickle",
        "t2ibias_allow_pickle",
        "Load pickle (.bin) model weights: true or false (default false: safetensors only).",
        "false",
    ),
    (
        "--t2i-label-problems",
        "t2ibias_label_problems",
        "Precomputed labels missing, unplanned or outside the suite's groups: error (default) or warn.",
        "error",
    ),
    (
        "--t2i-unconfigured",
        "t2ibias_unconfigured",
        "What a bias test does when no model is configured: fail (default) or skip.",
        "fail",
    ),
    (
        "--t2i-allow-all-skipped",
        "t2ibias_allow_all_skipped",
        "A run whose bias tests were all skipped passes: true or false (default false: it fails).",
        "false",
    ),
    (
        "--t2i-require-gate",
        "t2ibias_require_gate",
        "Fail a bias test that no assertion helper judged (policy or baseline): true or false (default false).",
        "false",
    ),
]


#: The baselines folder's name (``snapshot.BASELINE_DIR``, not imported here: that module loads numpy).
BASELINE_DIR = "__baselines__"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("t2ibias", "text-to-image bias tests")
    for option, ini, help_text, default in SETTINGS:
        group.addoption(option, action="store", dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=default)
    group.addoption(
        "--t2i-update-baselines",
        action="store_true",
        dest="t2ibias_update",
        default=False,
        help="Approve this run's metrics as the baselines (same as --snapshot-update).",
    )
    group.addoption(
        "--t2i-force-update",
        action="store_true",
        dest="t2ibias_force_update",
        default=False,
        help="Allow updating baselines in a CI job (CI, GITHUB_ACTIONS, GITLAB_CI, ... set).",
    )
    group.addoption(
        "--t2i-reset-anchor",
        action="store_true",
        dest="t2ibias_reset_anchor",
        default=False,
        help="When approving, make this run the new anchor (the cumulative allowance counts from it).",
    )
    group.addoption(
        "--t2i-prune-baselines",
        action="store_true",
        dest="t2ibias_prune",
        default=False,
        help="After a full, passing run, delete the baselines no collected test owns.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "t2ibias(category, suite=None): a text-to-image bias test of one category of a suite."
    )
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one unless --t2i-device=cpu.")
    check_settings(config)
    update = bool(config.getoption("t2ibias_update")) or bool(getattr(config.option, "update_snapshots", False))
    ci = in_ci(os.environ)
    if update and ci and not config.getoption("t2ibias_force_update"):
        raise pytest.UsageError(
            f"t2ibias: refusing to update baselines in a CI job ({ci} is set); approve baselines locally, "
            "or pass --t2i-force-update"
        )
    # every process (xdist workers included) keeps its own state; the image cache is shared on disk
    config.pluginmanager.register(T2IBiasSession(config, update), SESSION_PLUGIN)


def check_settings(config: pytest.Config) -> None:
    """Every setting, the suite and the policy, checked once before any test: one line, not one per test.

    The suite and the policy are checked when a model is configured (a run that means to test bias); a
    run without one fails (or skips) its bias tests instead, saying how to configure one. Every location
    is the user's (a model, cache, card, suite or report URL may carry a password): the line is masked.
    """
    try:
        _check_settings(config)
    except pytest.UsageError as err:
        raise pytest.UsageError(mask_credentials(str(err))) from None


def _check_settings(config: pytest.Config) -> None:
    mode = setting(config, "t2ibias_mode")
    if mode not in ("paper", "strict"):
        raise pytest.UsageError(f"t2ibias: --t2i-mode / t2ibias_mode must be 'paper' or 'strict', got {mode!r}")
    for name in ("t2ibias_allow_pickle", "t2ibias_allow_all_skipped", "t2ibias_require_gate"):
        value = setting(config, name)
        if value not in ("true", "false"):
            flag = "--t2i-" + name.removeprefix("t2ibias_").replace("_", "-")
            raise pytest.UsageError(f"t2ibias: {flag} / {name} must be true or false, got {value!r}")
    if setting(config, "t2ibias_label_problems") not in ("error", "warn"):
        raise pytest.UsageError(
            "t2ibias: --t2i-label-problems / t2ibias_label_problems must be error or warn, got "
            f"{setting(config, 't2ibias_label_problems')!r}"
        )
    unconfigured = setting(config, "t2ibias_unconfigured")
    if unconfigured not in ("fail", "skip"):
        raise pytest.UsageError(
            f"t2ibias: --t2i-unconfigured / t2ibias_unconfigured must be 'fail' or 'skip', got {unconfigured!r}"
        )
    lock_timeout = setting(config, "t2ibias_lock_timeout")
    try:
        seconds = float(lock_timeout) if lock_timeout is not None else 1.0
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise pytest.UsageError(
            f"t2ibias: --t2i-lock-timeout / t2ibias_lock_timeout must be a positive number of seconds, "
            f"got {lock_timeout!r}"
        )
    for name in ("t2ibias_images_per_prompt", "t2ibias_steps", "t2ibias_batch_size"):
        number = int_setting(setting(config, name), name)
        if number is not None and not 1 <= number <= 100_000:
            raise pytest.UsageError(f"t2ibias: {name} must be between 1 and 100000, got {number}")
    for name, kind in (("t2ibias_report", "a file"), ("t2ibias_html", "a file"), ("t2ibias_cache", "a folder")):
        value = setting(config, name)
        if value is None or value.lower() == "none":
            continue
        if name == "t2ibias_cache" and _is_url(value):
            _check_remote_cache(value)
            continue
        path = Path(value) if Path(value).is_absolute() else config.rootpath / value
        flag = "--t2i-" + name.removeprefix("t2ibias_")
        if kind == "a file" and path.is_dir():
            raise pytest.UsageError(f"t2ibias: {flag} / {name} must be a file, {path} is a folder")
        if kind == "a file":
            check_output_path(path, f"{flag} / {name}")
        if kind == "a folder" and path.exists() and not path.is_dir():
            raise pytest.UsageError(f"t2ibias: --t2i-cache / t2ibias_cache must be a folder, {path} is a file")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # appended to, so one inside a baselines folder would corrupt a baseline
        check_output_path(Path(summary), "GITHUB_STEP_SUMMARY")
    if setting(config, "t2ibias_model") is None or hasattr(config, "workerinput"):
        return  # (xdist workers: the controller checked)
    session = T2IBiasSession(config, False)
    from pytest_t2ibias.errors import T2IBiasError

    try:
        suite = session.load_suite()
        session.find_policy(suite)
        card = setting(config, "t2ibias_scorer_card")
        if card is not None:  # a missing or corrupt card: one line before any image is made
            from pytest_t2ibias.metrics.scorer_card import load_card

            load_card(Path(card) if Path(card).is_absolute() else config.rootpath / card)
    except T2IBiasError as err:
        raise pytest.UsageError(f"t2ibias: {err}") from None


def check_output_path(path: Path, what: str) -> None:
    """A report's path: never inside a baselines folder (after resolving links: a report written there
    replaces or corrupts an approved baseline), never under a file (it could not be written at all)."""
    resolved = path.resolve()
    if BASELINE_DIR in resolved.parts:
        raise pytest.UsageError(
            f"t2ibias: {what}: {path}{f' (resolved {resolved})' if resolved != path else ''} is inside a "
            f"baselines folder ({BASELINE_DIR}); write reports elsewhere"
        )
    parent = next((p for p in resolved.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise pytest.UsageError(f"t2ibias: {what}: {path} cannot be written, {parent} is a file, not a folder")


def _is_url(value: str) -> bool:
    from pytest_t2ibias.generate.storage import is_url

    return is_url(value)


def _check_remote_cache(url: str) -> None:
    """An fsspec URL cache must open (fsspec and its filesystem installed); credentials masked."""
    from pytest_t2ibias.generate.storage import CacheStorageError, RemoteStore

    try:
        RemoteStore(url)
    except CacheStorageError as err:
        raise pytest.UsageError(f"t2ibias: --t2i-cache / t2ibias_cache: {err}") from None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is None:
        return
    device = setting(item.config, "t2ibias_device") or "auto"
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        skip_at_test("t2ibias: needs a CUDA device (none here); run with --t2i-device=cpu to run it on the CPU")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """With ``t2ibias_require_gate = true``, a bias test whose body passed without any assertion helper
    judging its result fails: plain asserts are fine, but then no policy or baseline gated the model."""
    yield
    session = get_session(item.config)
    category = session.evaluated.get(item.nodeid)
    if category is not None and item.nodeid not in session.gated and session.get("t2ibias_require_gate") == "true":
        from pytest_t2ibias.report.summary import NOT_GATED

        pytest.fail(
            f"t2ibias: {category}: {NOT_GATED}: the test called no assertion helper (assert_no_regression, "
            "assert_policy, ...) and t2ibias_require_gate = true",
            pytrace=False,
        )


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def t2ibias_mode(pytestconfig: pytest.Config) -> str:
    """The metric mode of this run (``--t2i-mode`` or the ``t2ibias_mode`` ini value)."""
    return get_session(pytestconfig).mode


@pytest.fixture(scope="session")
def t2ibias_suite(pytestconfig: pytest.Config) -> Suite:
    """The prompt suite of this run (``--t2i-suite`` or the ``t2ibias_suite`` ini value)."""
    session = get_session(pytestconfig)
    return session.suite(session.settings_suite_name())


@pytest.fixture(scope="session")
def t2ibias_generator(pytestconfig: pytest.Config) -> ImageGenerator:
    """The configured model (built on first use); bias tests fail or skip, saying how to configure one,
    when there is none. Override it in a conftest to test a model object: an ``ImageGenerator``, a
    diffusers pipeline or ``fn(prompts, seeds) -> images`` (see docs/own-model.md)."""
    return get_session(pytestconfig).generator()


@pytest.fixture(scope="session")
def t2ibias_scorer(pytestconfig: pytest.Config) -> ImageAnnotator:
    """The configured scorer (annotator). Override it in a conftest with an ``ImageAnnotator``, a mapping
    of precomputed labels or ``fn(images, category) -> labels``."""
    return get_session(pytestconfig).annotator()


@pytest.fixture(scope="session")
def t2ibias_policy(pytestconfig: pytest.Config) -> Policy | None:
    """The threshold policy for the run's suite, or None when the thresholds folder has none."""
    return get_session(pytestconfig).settings_policy()[0]


@pytest.fixture
def t2ibias_evaluate(request: pytest.FixtureRequest) -> Iterator[Callable[..., CategoryResult]]:
    """``evaluate(category, suite=None)``: the category's result, gated by the policy and the test's baseline."""
    from dataclasses import replace

    from pytest_t2ibias.snapshot import Gate, register_gate, release_gate

    session = get_session(request.config)
    gates: list[Gate] = []

    def evaluate(category: str, suite: str | None = None) -> CategoryResult:
        if gates:
            raise ValueError(f"one bias category per test (this test already evaluated {gates[0].result.category!r})")
        for name, value in (("category", category), ("suite", suite)):
            if value is not None and not (isinstance(value, str) and value.strip()):
                pytest.fail(f"t2ibias_evaluate: {name} must be one name (a string), got {value!r}", pytrace=False)
        # the fixtures (or a conftest's overrides) are the model, scorer, suite and policy; asked when the
        # test evaluates, so an unconfigured model fails the call, not the setup
        session.bind(request)
        from pytest_t2ibias.generate.cache import LockTimeoutError
        from pytest_t2ibias.generate.validate import GeneratedImageError

        problem: str | None = None
        try:
            # a copy of its own, so the gate registered for it is this test's
            result = replace(session.evaluate(category, suite))
        except (LockTimeoutError, GeneratedImageError) as err:  # one line, not a traceback into the cache
            problem = str(err)
        if problem is not None:  # failed outside the except block: no chained traceback in the report
            fail_masked(f"t2ibias: {problem}")
        session.evaluated[request.node.nodeid] = category
        policy = session.policy()[0]
        rules = policy.rules_for(category) if policy is not None else {}

        def record(checks: list[Check]) -> None:
            session.gated.add(request.node.nodeid)
            # one outcome per test; a check two helpers both made is kept once
            outcome = next((o for o in session.outcomes if o.nodeid == request.node.nodeid), None)
            if outcome is None:
                outcome = TestOutcome(request.node.nodeid, category, [])
                session.outcomes.append(outcome)
            seen = {(c.metric, c.kind, c.threshold) for c in outcome.checks}
            new = [c for c in checks if (c.metric, c.kind, c.threshold) not in seen]
            outcome.checks += new
            for check in new:  # JUnit XML: the verdict of each check, and the baseline it compared with
                prefix = f"t2ibias.{category}.{check.metric}"
                kind: str = check.kind
                if kind in ("bound", "soft_bound"):  # a metric may have both a min and a max
                    kind += "_max" if check.threshold.startswith("<=") else "_min"
                request.node.user_properties.append((f"{prefix}.{kind}", check.verdict))
                if check.baseline is not None and check.kind == "regression":
                    request.node.user_properties.append((f"{prefix}.baseline", round(check.baseline, 6)))

        for metric_id, estimate in result.metrics.items():
            if isinstance(estimate.value, float):
                # what record_property does, without its xunit2 warning on every bias test
                request.node.user_properties.append((f"t2ibias.{category}.{metric_id}", round(estimate.value, 6)))
        gate = Gate(
            result=result,
            rules=rules,
            path=session.baseline_path(request.node),
            store=session.baselines,
            update=session.update,
            reset_anchor=bool(request.config.getoption("t2ibias_reset_anchor")),
            record=record,
            family=session.family_for(request.node.nodeid, result),
            scorer_problem=session.scorer_problem(result, policy),
        )
        gates.append(gate)
        register_gate(gate)
        return result

    yield evaluate
    for gate in gates:
        if gate.problem is not None:
            outcome = next((o for o in session.outcomes if o.nodeid == request.node.nodeid), None)
            if outcome is None:
                outcome = TestOutcome(request.node.nodeid, gate.result.category, [])
                session.outcomes.append(outcome)
            outcome.problem = gate.problem
        if gate.compared_with is not None:
            session.compared[(gate.result.suite, gate.result.category)] = gate.compared_with
        release_gate(gate)


@pytest.fixture
def t2ibias_result(request: pytest.FixtureRequest, t2ibias_evaluate: Callable[..., CategoryResult]) -> CategoryResult:
    """The result of the category named by the test's ``@pytest.mark.t2ibias(category=...)`` marker."""
    session = get_session(request.config)
    if request.node.nodeid in session.marker_errors:
        pytest.fail(f"t2ibias: {session.marker_errors[request.node.nodeid]}", pytrace=False)
    from pytest_t2ibias.errors import T2IBiasError

    try:
        category, suite = marker_category(request.node)
    except T2IBiasError as err:  # a test collected after the session looked (e.g. by a plugin)
        fail_masked(f"t2ibias: {err}")
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
    from pytest_t2ibias.errors import T2IBiasError
    from pytest_t2ibias.judge.family import build_family, gather_aggregates
    from pytest_t2ibias.judge.policy import DEFAULT_ALPHA
    from pytest_t2ibias.snapshot import AggregateGate, register_gate, release_gate

    session = get_session(request.config)
    session.bind(request)
    nodeid = request.node.nodeid
    if nodeid in session.marker_errors:
        pytest.fail(f"t2ibias: {session.marker_errors[nodeid]}", pytrace=False)
    problem: str | None = None
    try:
        category, suite = marker_category(request.node)
        if category is not None:
            raise T2IBiasError(
                f"t2ibias_aggregate aggregates a whole suite; its marker names a category ({category!r}): "
                "use @pytest.mark.t2ibias(suite=...) or no marker"
            )
        found = session.aggregates(suite)
    except T2IBiasError as err:
        problem = str(err)
    if problem is not None:  # failed outside the except block: no chained traceback in the report
        fail_masked(f"t2ibias: {problem}")
    policy = session.policy()[0]
    rules = dict(policy.aggregate) if policy is not None else {}
    family = session.run_family().get(nodeid)
    if family is None and rules:  # outside the run's family (an update run): corrected on its own
        family = build_family({nodeid: gather_aggregates(found, rules)}, policy)[nodeid]

    session.evaluated[nodeid] = "aggregate"

    def record(checks: list[Check]) -> None:
        session.gated.add(nodeid)
        session.outcomes.append(TestOutcome(nodeid, "aggregate", list(checks)))
        for check in checks:
            request.node.user_properties.append((f"t2ibias.aggregate.{check.metric}.{check.kind}", check.verdict))

    for metric_id, estimate in found.metrics.items():
        if isinstance(estimate.value, float):
            request.node.user_properties.append((f"t2ibias.aggregate.{metric_id}", round(estimate.value, 6)))
    gate = AggregateGate(
        aggregates=found,
        suite=session.load_suite(suite).name,
        rules=rules,
        adjusted=dict(family.adjusted) if family is not None else {},
        alpha=policy.alpha if policy is not None else DEFAULT_ALPHA,
        record=record,
    )
    register_gate(gate)
    yield found
    release_gate(gate)
