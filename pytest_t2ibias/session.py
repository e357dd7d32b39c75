"""Per-run state of the plugin: the hooks, evaluated categories, each test's gate, the run's family and
the outputs.

Built in ``pytest_configure`` from the run's :class:`~pytest_t2ibias.settings.Settings` and registered as
a plugin object (as xdist's ``DSession``): every process (xdist workers included) keeps its own; the image
cache is shared on disk. The model and scorer the settings name are built by
:class:`~pytest_t2ibias.stages.SettingsStages`. Nothing heavy is imported until a bias test needs it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_t2ibias.masking import mask_credentials
from pytest_t2ibias.stages import SettingsStages, fail_masked

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.family import RegressionFamily, TestChecks
    from pytest_t2ibias.judge.policy import Policy
    from pytest_t2ibias.judge.verdicts import Check
    from pytest_t2ibias.metrics.aggregate import Aggregates
    from pytest_t2ibias.metrics.intervals import MetricEstimate
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.metrics.scorer_card import ScorerCard
    from pytest_t2ibias.results import BaselineImages, RunResult
    from pytest_t2ibias.settings import Settings
    from pytest_t2ibias.snapshot import BaselineStore, StoreIndex
    from pytest_t2ibias.suites.schema import Suite

SESSION_PLUGIN = "t2ibias-session"
#: The fixtures that make a test a bias test (besides the ``t2ibias`` marker).
BIAS_FIXTURES = ("t2ibias_result", "t2ibias_evaluate", "t2ibias_aggregate")
#: Environment variables that mean "this is a CI job" (set to anything but a false value).
CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "JENKINS_URL",
    "TF_BUILD",
    "TEAMCITY_VERSION",
    "CIRCLECI",
    "CODEBUILD_BUILD_ID",  # AWS CodeBuild
    "bamboo_buildKey",  # Bamboo (it lower-cases the prefix of the variables it exports)
    "HUDSON_URL",  # Hudson, and Jenkins installs that kept Hudson's variables
)


def in_ci(environ: Mapping[str, str]) -> str | None:
    """The CI variable that is set (not to a false value), or None."""
    for name in CI_VARIABLES:
        if environ.get(name, "").strip().lower() not in ("", "0", "false", "no"):
            return name
    return None


def near_miss(folder: Path, suite_name: str) -> None:
    """Raise when a policy file in ``folder`` names a suite that reads like a misspelling of ``suite_name``
    (a folder with no policy for the suite is otherwise fine: it may hold other suites' policies).

    Raises:
        PolicyError: naming the file, its ``suite:`` value and the suite it probably meant.
    """
    import difflib

    from pytest_t2ibias._io import load_yaml
    from pytest_t2ibias.judge.policy import PolicyError

    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
        try:
            data = load_yaml(path.read_text(encoding="utf-8"), str(path), PolicyError)
        except (OSError, UnicodeDecodeError, PolicyError):
            continue  # find_policy read it already and reports what is wrong with it
        named = data.get("suite") if isinstance(data, dict) else None
        if isinstance(named, str) and named != suite_name and difflib.get_close_matches(named, [suite_name], 1, 0.8):
            raise PolicyError(
                f"{path}: field suite: {named!r} names no suite of this run; did you mean {suite_name!r}? "
                "(no policy applies to the suite until it is fixed)"
            )


def is_bias_test(item: pytest.Item) -> bool:
    return item.get_closest_marker("t2ibias") is not None or bool(
        set(BIAS_FIXTURES) & set(getattr(item, "fixturenames", ()))
    )


def marker_category(item: pytest.Item) -> tuple[str | None, str | None]:
    """The (category, suite) a test's ``t2ibias`` marker names.

    Raises:
        SettingsError: the marker's arguments are not a category name and an optional suite name.
    """
    from pytest_t2ibias.errors import SettingsError

    marker = item.get_closest_marker("t2ibias")
    if marker is None:
        return None, None
    unknown = sorted(set(marker.kwargs) - {"category", "suite"})
    if unknown or len(marker.args) > 1 or (marker.args and "category" in marker.kwargs):
        raise SettingsError(
            f"@pytest.mark.t2ibias takes category=NAME and suite=NAME_OR_PATH, got args {list(marker.args)} "
            f"and keywords {sorted(marker.kwargs)}"
        )
    category = marker.kwargs.get("category", marker.args[0] if marker.args else None)
    suite = marker.kwargs.get("suite")
    for name, value in (("category", category), ("suite", suite)):
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise SettingsError(f"@pytest.mark.t2ibias {name} must be one name (a string), got {value!r}")
    return category, suite


@dataclass
class NotRun:
    """A bias test that did not run (skipped), and why."""

    nodeid: str
    reason: str


@dataclass
class TestOutcome:
    nodeid: str
    category: str
    checks: list[Check]
    #: why the test could not judge its category fully (e.g. "no baseline"), shown in the summary
    problem: str | None = None


TestOutcome.__test__ = False  # type: ignore[attr-defined]


@dataclass(eq=False)  # a plugin object must stay hashable
class T2IBiasSession:
    """Per-run state: the stages in use, evaluated categories, each test's gate and checks, the outputs."""

    config: pytest.Config
    #: the run's settings, read and checked once (``pytest_configure``)
    settings: Settings
    _suites: dict[str, Suite] = field(default_factory=dict)
    #: the stages in use (:meth:`bind`: the fixtures' values), and the ones the settings name
    _generator: ImageGenerator | None = None
    _annotator: ImageAnnotator | None = None
    #: the model and scorer the settings name (the default fixtures' values)
    stages: SettingsStages = field(init=False)
    _own_policy: tuple[Policy | None, str | None] | None = None
    _bound_suite: Suite | None = None
    #: the stages each set of injection-point fixture definitions gave (:meth:`bind`), and the current set
    _stages: dict[tuple[int, ...], tuple[Any, Any, Any, Any]] = field(default_factory=dict)
    _stage: tuple[int, ...] | None = None
    #: (suite, category) -> the set of fixture definitions that evaluated it
    _evaluated_by: dict[tuple[str, str], tuple[int, ...] | None] = field(default_factory=dict)
    _families: dict[tuple[int, ...] | None, dict[str, RegressionFamily]] = field(default_factory=dict)
    _scorer_card: tuple[ScorerCard | None] | None = None
    _policy: tuple[Policy | None, str | None] | None = None
    _results: dict[tuple[str, str], CategoryResult] = field(default_factory=dict)
    outcomes: list[TestOutcome] = field(default_factory=list)
    _worker_runs: list[RunResult] = field(default_factory=list)
    _marked: list[pytest.Item] = field(default_factory=list)
    #: the tests of a suite's aggregates (``t2ibias_aggregate``), with the suite their marker names
    _aggregate_marked: list[tuple[pytest.Item, str | None]] = field(default_factory=list)
    _aggregates: dict[str, Aggregates] = field(default_factory=dict)
    _family: dict[str, RegressionFamily] | None = None
    baselines: BaselineStore = field(default_factory=lambda: _store())
    #: the selected bias tests whose marker is unusable, and why (each fails on its own)
    marker_errors: dict[str, str] = field(default_factory=dict)
    not_run: list[NotRun] = field(default_factory=list)
    #: the baseline files of every collected bias test (before deselection); on an xdist controller, the
    #: workers' (one per worker received)
    _index: StoreIndex = field(default_factory=lambda: _store_index())
    _worker_indexes: int = 0
    #: every collected bias test, before -k/-m/--lf or a conftest dropped any (None: not collected here)
    _collected: list[pytest.Item] | None = None
    _complete: bool = True
    _bias_ids: set[str] = field(default_factory=set)
    _pruned: list[Path] = field(default_factory=list)
    _prune_refused: str | None = None
    #: the reports this process wrote, (what, where), named at the end of the terminal summary
    written: list[tuple[str, Path]] = field(default_factory=list)
    #: (suite, category) -> the approved baseline a test compared it with (for the reports' flips)
    compared: dict[tuple[str, str], BaselineRecord] = field(default_factory=dict)
    #: every suite loaded, by its ``name:``: results and baselines carry that name, which need not be the
    #: built-in name or path the suite was loaded from (``name: my-suite`` in ``suites/custom.yaml``)
    _named: dict[str, Suite] = field(default_factory=dict)
    #: the bias tests that ran (not skipped) in this process; xdist workers hand their count over
    _ran: set[str] = field(default_factory=set)
    _workers_ran: int = 0
    #: session-level failures of the run (outputs not written, worker results lost), one line each
    errors: list[str] = field(default_factory=list)
    #: why a run whose tests passed still fails (every bias test skipped), shown in every summary
    run_problem: str | None = None
    #: (test id -> category) of the tests that evaluated a category / the aggregates, and those of them
    #: whose result an assertion helper judged
    evaluated: dict[str, str] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    _run: RunResult | None = None

    def __post_init__(self) -> None:
        self.stages = SettingsStages(self.settings, self.config, lambda: self.suite(self.settings.suite))

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def update(self) -> bool:
        """Approving this run's results as the baselines."""
        return self.settings.update

    # -- the stages, built on first use ---------------------------------------------------------------

    def suite(self, name: str | None = None) -> Suite:
        """The suite (the run's, or a marker's); a bad one fails the asking test with one line."""
        from pytest_t2ibias.suites import SuiteError

        try:
            return self.load_suite(name)
        except SuiteError as err:
            fail_masked(f"t2ibias: {err}")

    def load_suite(self, name: str | None = None) -> Suite:
        """The suite by name or path (relative to the rootdir), loaded once.

        Raises:
            SuiteError: it cannot be read or does not match the schema.
        """
        from pytest_t2ibias.suites import load_suite

        if name is None and self._bound_suite is not None:
            return self._bound_suite  # the t2ibias_suite fixture's (an override's) suite
        key = name or self.settings.suite
        if key not in self._suites:
            self._suites[key] = load_suite(self._path_or_name(key))
            self._named.setdefault(self._suites[key].name, self._suites[key])
        return self._suites[key]

    def suite_named(self, name: str) -> Suite:
        """A suite by the ``name:`` a result carries: the one this session loaded under that name (from
        whatever path), else a built-in suite or path of that name.

        Raises:
            SuiteError: no suite of that name was loaded and none can be.
        """
        return self._named[name] if name in self._named else self.load_suite(name)

    def _path_or_name(self, value: str) -> str:
        candidate = self.config.rootpath / value
        return str(candidate) if value.endswith((".yaml", ".yml")) and candidate.is_file() else value

    def bind(self, request: pytest.FixtureRequest) -> None:
        """Ask the four injection-point fixtures (the plugin's defaults, or a conftest's overrides) before
        evaluating: everything downstream (cache key, fingerprint, baseline model id, report) follows what
        they return. Generators and scorers given as objects or callables are wrapped, once per set of
        fixture definitions (a conftest in a subfolder may test another model than the rootdir's)."""
        key = stage_key(request.node)
        if key == self._stage:
            return
        if key not in self._stages:
            from pytest_t2ibias.annotate.objects import as_annotator
            from pytest_t2ibias.errors import T2IBiasError
            from pytest_t2ibias.generate.objects import as_generator

            suite = request.getfixturevalue("t2ibias_suite")
            policy = request.getfixturevalue("t2ibias_policy")
            own = self.settings_policy()
            found = own if own[0] is policy else (policy, "the t2ibias_policy fixture")
            try:
                generator = as_generator(
                    request.getfixturevalue("t2ibias_generator"),
                    steps=self.settings.steps,
                    batch_size=self.settings.batch_size,
                )
                scorer = request.getfixturevalue("t2ibias_scorer")
                if self.stages.is_own_annotator(scorer) and suite is not self.load_suite(self.settings.suite):
                    scorer = self.stages.build_annotator(suite)  # the settings' scorer, for the overriding suite
                annotator = as_annotator(scorer, suite)
            except T2IBiasError as err:
                fail_masked(f"t2ibias: {err}")
            self._stages[key] = (suite, found, generator, annotator)
        self._bound_suite, self._policy, self._generator, self._annotator = self._stages[key]
        self._stage = key

    def current(self) -> tuple[ImageGenerator, ImageAnnotator]:
        """The model and scorer in use: the fixtures' (:meth:`bind`), else the settings'."""
        generator = self._generator if self._generator is not None else self.stages.generator()
        return generator, self._annotator if self._annotator is not None else self.stages.annotator()

    def scorer_card(self) -> ScorerCard | None:
        """The scorer card of ``t2ibias_scorer_card`` (relative to the rootdir), checked against the run's
        scorer; a corrupt or stale card fails the asking test with one line."""
        if self._scorer_card is None:
            value = self.settings.scorer_card
            if value is None:
                self._scorer_card = (None,)
            else:
                from pytest_t2ibias.metrics.scorer_card import ScorerCardError, check_card_scorer, load_card

                path = Path(value) if Path(value).is_absolute() else self.config.rootpath / value
                try:
                    card = load_card(path)
                    check_card_scorer(card, self.current()[1].scorer_id, f"t2ibias_scorer_card {path}")
                except ScorerCardError as err:
                    fail_masked(f"t2ibias: {err}")
                self._scorer_card = (card,)
        return self._scorer_card[0]

    def scorer_problem(self, result: CategoryResult, policy: Policy | None) -> str | None:
        """Why the policy does not trust the scorer for ``result``'s attribute (None: it does, or no policy)."""
        from pytest_t2ibias.judge.verdicts import scorer_problem

        if policy is None:
            return None
        return scorer_problem(result, policy.require_scorer_card, policy.min_kappa_for(result.category))

    def policy(self) -> tuple[Policy | None, str | None]:
        """The run's policy and its file (checked at configure time when a model is configured)."""
        if self._policy is None:
            self._policy = self.settings_policy()
        return self._policy

    def settings_policy(self) -> tuple[Policy | None, str | None]:
        """The policy the settings give for the settings' suite (the default ``t2ibias_policy``)."""
        if self._own_policy is None:
            from pytest_t2ibias.errors import T2IBiasError

            try:
                self._own_policy = self.find_policy(self.load_suite(self.settings.suite))
            except T2IBiasError as err:
                fail_masked(f"t2ibias: {err}")
        return self._own_policy

    def find_policy(self, suite: Suite) -> tuple[Policy | None, str | None]:
        """The policy for ``suite`` in the thresholds folder (None when the folder has none), or in the
        one policy file the setting names.

        Raises:
            PolicyError: what the setting names does not exist, the policy is invalid, or a policy in the
                folder names a suite that looks like a misspelling of ``suite``'s name.
        """
        from pytest_t2ibias.judge.policy import PolicyError, find_policy, load_policy

        folder = self.settings.thresholds
        path = Path(folder) if folder else self.config.rootpath / "thresholds"
        if not path.is_absolute():
            path = self.config.rootpath / path
        if folder and path.is_file():  # one policy file, named directly
            return load_policy(path, suite), str(path)
        if folder and not path.exists():
            raise PolicyError(
                f"--t2i-thresholds / t2ibias_thresholds: {path} does not exist (give the folder of policy files, "
                "or one policy file)"
            )
        found = find_policy(path, suite)
        if found is None:
            near_miss(path, suite.name)
        return (found[0], str(found[1])) if found else (None, None)

    def cache_dir(self) -> Path | str | None:
        """The cache folder, or its fsspec URL (a ``str``; the cache keeps a local copy), or None."""
        from pytest_t2ibias.generate.storage import is_url

        value = self.settings.cache
        if value is not None and value.lower() == "none":
            return None
        if value and is_url(value):
            return value
        path = Path(value) if value else Path(".t2ibias_cache")
        return path if path.is_absolute() else self.config.rootpath / path

    def evaluate(self, category: str, suite_name: str | None = None) -> CategoryResult:
        """generate -> annotate -> measure (+ intervals) for one category, once per session."""
        from pytest_t2ibias.annotate.cache import RecordsCache
        from pytest_t2ibias.generate.cache import ImageCache
        from pytest_t2ibias.pipeline import evaluate_suite

        suite = self.suite(suite_name)
        key = (suite.name, category)
        if key in self._results:
            if self._evaluated_by.get(key, self._stage) != self._stage:
                pytest.fail(
                    f"t2ibias: category {category!r} of suite {suite.name!r} is tested with two models in one run "
                    "(a conftest overrides t2ibias_generator or t2ibias_scorer for some of its tests): run them "
                    "in separate pytest runs",
                    pytrace=False,
                )
            return self._results[key]
        if category not in suite.categories:
            pytest.fail(
                f"t2ibias: suite {suite.name!r} has no category {category!r}; categories: {list(suite.categories)}",
                pytrace=False,
            )
        generator, annotator = self.current()
        cache_dir = self.cache_dir()
        lock_wait = self.settings.lock_timeout
        cache = ImageCache(cache_dir, max_lock_wait=lock_wait) if cache_dir else None  # URL: .root is the local copy
        evaluation = evaluate_suite(
            suite,
            generator,
            annotator,
            mode=self.mode,  # type: ignore[arg-type]
            images_per_prompt=self.settings.images_per_prompt,
            categories=[category],
            cache=cache,
            # xdist workers (and later runs) share scored categories instead of scoring them again
            records_cache=RecordsCache(cache.root) if cache else None,
            scorer_card=self.scorer_card(),
            on_stage=self.stage_progress(),
        )
        self._results[key] = evaluation.categories[category]
        self._evaluated_by[key] = self._stage
        return self._results[key]

    def stage_progress(self) -> Callable[[str, str, int], Callable[[int], None] | None] | None:
        """Progress lines of the stages through pytest's terminal (:class:`~pytest_t2ibias.progress.
        StageLines`); None where there is no terminal reporter (an xdist worker: its output is not shown)."""
        from pytest_t2ibias.progress import StageLines

        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return None
        capture = self.config.pluginmanager.get_plugin("capturemanager")

        def uncaptured(write: Callable[[str], None]) -> Callable[[str], None]:
            # the stages run inside a test's setup, where pytest captures fd 1 (as its live logging does)
            def out(line: str) -> None:
                with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                    write(line)

            return out

        live = uncaptured(reporter.rewrite) if reporter.isatty else None
        lines = StageLines(uncaptured(reporter.write_line), live=live, verbosity=self.config.get_verbosity())
        return lines.stage

    def aggregates(self, suite_name: str | None = None) -> Aggregates:
        """The aggregates of every category of the suite that declares a reference (each category
        evaluated once per session, as the category tests evaluate it).

        Raises:
            T2IBiasError: the suite has no category with a ``compare_to`` reference.
        """
        from pytest_t2ibias.errors import T2IBiasError
        from pytest_t2ibias.metrics.aggregate import aggregate

        suite = self.load_suite(suite_name)
        if suite.name not in self._aggregates:
            names = [name for name, spec in suite.categories.items() if spec.compare_to]
            if not names:
                raise T2IBiasError(
                    f"suite {suite.name!r} has no category with a reference (compare_to): nothing to aggregate"
                )
            results = {name: self.evaluate(name, suite_name) for name in names}
            self._aggregates[suite.name] = aggregate(suite, results, seed=suite.seed)
        return self._aggregates[suite.name]

    # -- a test's gate ------------------------------------------------------------------------------------

    def check_configured(self) -> None:
        """The suite, the policy and the scorer card of a run with a model, checked in ``pytest_configure``
        (one line before any test; a run without a model fails or skips its bias tests instead, saying how
        to configure one; xdist workers: the controller checked).

        Raises:
            pytest.UsageError: what is wrong with them (masked: a location may carry a password).
        """
        if self.settings.model is None or hasattr(self.config, "workerinput"):
            return
        from pytest_t2ibias.errors import T2IBiasError

        problem: str | None = None
        try:
            self._own_policy = self.find_policy(self.load_suite())
            if self.settings.scorer_card is not None:  # a missing or corrupt card: one line before any image
                from pytest_t2ibias.metrics.scorer_card import load_card

                load_card(self._rooted(self.settings.scorer_card))
        except T2IBiasError as err:
            problem = str(err)
        if problem is None:
            problem = self._hub_model_problem()
        if problem is not None:
            raise pytest.UsageError(mask_credentials(f"t2ibias: {problem}"))

    def _hub_model_problem(self) -> str | None:
        """A hub model id the hub says does not exist (or a revision it lacks): stopped at start-up, like a
        policy error, instead of failing every test. Not asked with precomputed labels, which never load
        the model (its id is then only a name)."""
        from pytest_t2ibias._hf import hub_model_problem
        from pytest_t2ibias.registry import hub_model_id

        model_id = hub_model_id(self.settings.model or "")
        if model_id is None or (self.settings.scorer or "").startswith("labels:"):
            return None
        return hub_model_problem(model_id, self.settings.revision)

    def marker_of(self, item: pytest.Item) -> tuple[str | None, str | None]:
        """The (category, suite) of a test's ``t2ibias`` marker; an unusable marker fails the test."""
        from pytest_t2ibias.errors import T2IBiasError

        if item.nodeid in self.marker_errors:
            pytest.fail(f"t2ibias: {self.marker_errors[item.nodeid]}", pytrace=False)
        try:
            return marker_category(item)
        except T2IBiasError as err:  # a test collected after the session looked (e.g. by a plugin)
            fail_masked(f"t2ibias: {err}")

    def gated_result(self, request: pytest.FixtureRequest, category: str, suite: str | None) -> CategoryResult:
        """``category``'s result for the requesting test: a copy of its own that carries the test's gate
        (its policy rules, its baseline, its part of the run's family) for the assertion helpers."""
        for name, value in (("category", category), ("suite", suite)):
            if value is not None and not (isinstance(value, str) and value.strip()):
                pytest.fail(f"t2ibias_evaluate: {name} must be one name (a string), got {value!r}", pytrace=False)
        # the fixtures (or a conftest's overrides) are the model, scorer, suite and policy; asked when the
        # test evaluates, so an unconfigured model fails the call, not the setup
        self.bind(request)
        from pytest_t2ibias.assertions import regression_failure
        from pytest_t2ibias.generate.cache import LockTimeoutError
        from pytest_t2ibias.generate.validate import GeneratedImageError
        from pytest_t2ibias.judge.family import gather
        from pytest_t2ibias.snapshot import Gate, with_gate
        from pytest_t2ibias.syrupy_extension import baseline_assertion

        problem: str | None = None
        try:
            result = self.evaluate(category, suite)
        except (LockTimeoutError, GeneratedImageError) as err:  # one line, not a traceback into the cache
            problem = str(err)
        if problem is not None:  # failed outside the except block: no chained traceback in the report
            fail_masked(f"t2ibias: {problem}")
        item = request.node
        self.evaluated[item.nodeid] = category
        policy = self.policy()[0]
        rules = policy.rules_for(category) if policy is not None else {}
        _record_values(item, category, result.metrics)

        def own(stored: BaselineRecord | None) -> TestChecks:
            return gather(self.suite_named(result.suite), result, stored, rules, policy, approving=self.update)

        gate = Gate(
            result=result,
            rules=rules,
            path=self.baseline_path(item),
            store=self.baselines,
            update=self.update,
            reset_anchor=self.settings.reset_anchor,
            record=functools.partial(self.record_checks, item, category),
            family=self.family_for(item.nodeid, own),
            scorer_problem=self.scorer_problem(result, policy),
            syrupy=baseline_assertion(request, self.update),
            explain=regression_failure,
        )
        return with_gate(result, gate)

    def gated_aggregates(self, request: pytest.FixtureRequest) -> Aggregates:
        """The aggregates of the suite the requesting test's marker names (else the run's), a copy that
        carries the test's gate: the policy's ``aggregate`` rules and their part of the run's family."""
        from pytest_t2ibias.errors import T2IBiasError
        from pytest_t2ibias.judge.family import gather_aggregates
        from pytest_t2ibias.judge.policy import DEFAULT_ALPHA
        from pytest_t2ibias.snapshot import AggregateGate, with_gate

        self.bind(request)
        item = request.node
        category, suite = self.marker_of(item)
        problem: str | None = None
        try:
            if category is not None:
                raise T2IBiasError(
                    f"t2ibias_aggregate aggregates a whole suite; its marker names a category ({category!r}): "
                    "use @pytest.mark.t2ibias(suite=...) or no marker"
                )
            found = self.aggregates(suite)
        except T2IBiasError as err:
            problem = str(err)
        if problem is not None:  # failed outside the except block: no chained traceback in the report
            fail_masked(f"t2ibias: {problem}")
        policy = self.policy()[0]
        rules = dict(policy.aggregate) if policy is not None else {}
        family = self.family_for(item.nodeid, lambda stored: gather_aggregates(found, rules))(None)
        self.evaluated[item.nodeid] = "aggregate"
        _record_values(item, "aggregate", found.metrics)
        gate = AggregateGate(
            aggregates=found,
            suite=self.load_suite(suite).name,
            rules=rules,
            adjusted=dict(family.adjusted),
            alpha=policy.alpha if policy is not None else DEFAULT_ALPHA,
            record=functools.partial(self.record_aggregate_checks, item),
        )
        return with_gate(found, gate)

    def _outcome(self, nodeid: str, category: str) -> TestOutcome:
        """The test's one outcome (made on first use)."""
        outcome = next((o for o in self.outcomes if o.nodeid == nodeid), None)
        if outcome is None:
            outcome = TestOutcome(nodeid, category, [])
            self.outcomes.append(outcome)
        return outcome

    def record_checks(self, item: pytest.Item, category: str, checks: list[Check]) -> None:
        """A test's judged checks: kept for the summary (a check two helpers both made, once), and each
        verdict, with the baseline it compared with, in JUnit XML."""
        self.gated.add(item.nodeid)
        outcome = self._outcome(item.nodeid, category)
        seen = {(c.metric, c.kind, c.threshold) for c in outcome.checks}
        new = [c for c in checks if (c.metric, c.kind, c.threshold) not in seen]
        outcome.checks += new
        for check in new:
            prefix = f"t2ibias.{category}.{check.metric}"
            kind: str = check.kind
            if kind in ("bound", "soft_bound"):  # a metric may have both a min and a max
                kind += "_max" if check.threshold.startswith("<=") else "_min"
            item.user_properties.append((f"{prefix}.{kind}", check.verdict))
            if check.baseline is not None and check.kind == "regression":
                item.user_properties.append((f"{prefix}.baseline", round(check.baseline, 6)))

    def record_aggregate_checks(self, item: pytest.Item, checks: list[Check]) -> None:
        """The aggregates' judged checks: for the summary, and each verdict in JUnit XML."""
        self.gated.add(item.nodeid)
        self.outcomes.append(TestOutcome(item.nodeid, "aggregate", list(checks)))
        for check in checks:
            item.user_properties.append((f"t2ibias.aggregate.{check.metric}.{check.kind}", check.verdict))

    def close_gate(self, item: pytest.Item, judged: CategoryResult | Aggregates) -> None:
        """After the test: why its baseline could not be compared (for the summary), and the baseline it
        was compared with (for the reports' flips); what it handed out then carries no gate."""
        from pytest_t2ibias.snapshot import Gate, release_gate

        gate = release_gate(judged)
        if not isinstance(gate, Gate):
            return
        if gate.problem is not None:
            self._outcome(item.nodeid, gate.result.category).problem = gate.problem
        if gate.compared_with is not None:
            self.compared[(gate.result.suite, gate.result.category)] = gate.compared_with

    # -- baselines ------------------------------------------------------------------------------------------

    def baseline_path(self, item: pytest.Item) -> Path:
        """The test's baseline file (keyed by its node id); a test that would share one with another fails."""
        from pytest_t2ibias.snapshot import baseline_key, baseline_path

        if item.nodeid in self._index.clashes:
            pytest.fail(self._index.clashes[item.nodeid], pytrace=False)
        return self._index.paths.get(item.nodeid) or baseline_path(Path(item.path), baseline_key(names_in_file(item)))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Generator[None]:
        # outermost: every collected test, before -k/-m, --lf or a conftest drop any; each owns its baseline
        self._collected = [item for item in items if is_bias_test(item)]
        return (yield)

    def _index_collection(self, bias: list[pytest.Item]) -> None:
        """Index the baselines of every collected bias test; a selection by node id, or tests dropped after
        collection, make the run partial (it may not prune)."""
        from pytest_t2ibias.snapshot import StoreIndex

        everything = self._collected if self._collected is not None else bias
        partial = node_id_selected(self.config)
        tests = [(item.nodeid, Path(item.path), names_in_file(item)) for item in everything]
        self._index = StoreIndex.build(tests, partial)
        self.baselines.legacy = self._index.legacy
        # a module selected by node id was collected in part: its older files may belong to tests not seen
        self.baselines.retire_legacy = not partial
        if partial or {i.nodeid for i in bias} != {i.nodeid for i in everything}:
            self._complete = False
        if hasattr(self.config, "workerinput"):  # the xdist controller prunes: it collects nothing itself
            self.config.workeroutput["t2ibias_store"] = self._index.to_json()  # type: ignore[attr-defined]
            self.config.workeroutput["t2ibias_complete"] = self._complete  # type: ignore[attr-defined]

    # -- the run's family of regression checks (one correction across all of them) -------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from pytest_t2ibias.errors import T2IBiasError

        bias = [item for item in session.items if is_bias_test(item)]
        self._bias_ids = {item.nodeid for item in bias}
        self._index_collection(bias)
        # after -k/-m deselection: only the tests that will run form the family; a bad marker fails its
        # own test (in its fixture), never another one
        self._marked = []
        for item in bias:
            try:
                category, suite_name = marker_category(item)
                if category is not None:
                    suite = self.load_suite(suite_name)
                    if category not in suite.categories:
                        raise T2IBiasError(
                            f"suite {suite.name!r} has no category {category!r}; categories: {list(suite.categories)}"
                        )
            except T2IBiasError as err:
                self.marker_errors[item.nodeid] = str(err)
                continue
            if item.nodeid in self._index.clashes:
                continue  # fails on its own, with both names
            fixtures = getattr(item, "fixturenames", ())
            if category is not None and "t2ibias_result" in fixtures:
                self._marked.append(item)
            elif category is None and "t2ibias_aggregate" in fixtures:
                self._aggregate_marked.append((item, suite_name))

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        if any(is_bias_test(item) for item in items):
            self._complete = False  # pruning baselines needs every bias test of the modules to run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self._complete = False
        if report.skipped and report.nodeid in self._bias_ids and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.not_run.append(NotRun(report.nodeid, str(reason).removeprefix("Skipped: ")))
        elif report.nodeid in self._bias_ids and (report.when == "call" or report.failed):
            self._ran.add(report.nodeid)  # its body ran, or its setup failed: red, not "tested nothing"

    def family_for(
        self, nodeid: str, own: Callable[[BaselineRecord | None], TestChecks]
    ) -> Callable[[BaselineRecord | None], RegressionFamily]:
        """A test's comparisons and adjusted p-values (a category's or the aggregates'): its part of the
        run's family, else (a test outside it: an update run, a category without a marker) a family of its
        own, corrected on its own, from ``own`` (its checks against a comparable stored baseline)."""
        from pytest_t2ibias.judge.family import build_family

        family = self.run_family()
        if nodeid in family:
            return lambda stored: family[nodeid]
        policy = self.policy()[0]
        return lambda stored: build_family({nodeid: own(stored)}, policy)[nodeid]

    def approval_base(self, item: pytest.Item) -> BaselineRecord | None:
        """The baseline an approval of ``item`` replaces and takes its anchor from (None when there is
        none, it is unreadable, or ``--t2i-reset-anchor`` makes this run the new anchor)."""
        from pytest_t2ibias.judge.baseline import BaselineRecord

        if self.settings.reset_anchor:
            return None
        stored, _ = self.baselines.read(self.baseline_path(item))
        return stored if isinstance(stored, BaselineRecord) else None

    def run_family(self) -> dict[str, RegressionFamily]:
        """Every marked bias test's checks up front (its regressions against a comparable baseline and
        that baseline's anchor, its hard bounds), then one correction across all of them.

        Holm needs every p-value of the family before any verdict, so the first bias test of the run
        evaluates every marked category (each once per session; images and scored categories come from
        the shared cache).
        """
        if self._stage in self._families:
            return self._families[self._stage]
        self._family = self._families[self._stage] = {}
        policy = self.policy()[0]
        if policy is None:
            return self._family
        from pytest_t2ibias.errors import T2IBiasError
        from pytest_t2ibias.judge.family import build_family, gather, gather_aggregates
        from pytest_t2ibias.snapshot import comparable_baseline

        checks: dict[str, TestChecks] = {}
        if policy.aggregate:
            for item, suite_name in self._aggregate_marked:
                try:
                    found = self.aggregates(suite_name)
                except T2IBiasError:
                    continue  # the test itself fails with the reason
                checks[item.nodeid] = gather_aggregates(found, policy.aggregate)
        for item in self._marked:
            if self._stages and stage_key(item) != self._stage:
                continue  # another model (a conftest's override): its own family, when its tests run
            category, suite_name = marker_category(item)  # checked at collection
            assert category is not None
            suite = self.load_suite(suite_name)
            rules = policy.rules_for(category)
            if not rules:
                continue
            result = self.evaluate(category, suite_name)
            if self.update:  # approving: judged against the anchor the approval keeps (judge.approval)
                stored = self.approval_base(item)
            else:
                stored = comparable_baseline(self.baselines, self.baseline_path(item), result, rules)
            checks[item.nodeid] = gather(suite, result, stored, rules, policy, approving=self.update)
        self._family = self._families[self._stage] = build_family(checks, policy)
        return self._family

    # -- results and the summary ------------------------------------------------------------------------

    def run_result(self) -> RunResult:
        """This process's results in the one result model."""
        from pytest_t2ibias.results import AggregatesModel, BiasTestResult, RunResult, SkippedTest

        tests = [BiasTestResult.from_checks(o.nodeid, o.category, o.checks, o.problem) for o in self.outcomes]
        found = next(iter(self._aggregates.values()), None)  # a run's results carry one suite's aggregates
        run = RunResult.from_results(
            self._results.values(),
            tests,
            not_run=[SkippedTest(nodeid=n.nodeid, reason=n.reason) for n in self.not_run],
            baselines={str(path): event for path, event in sorted(self.baselines.events.items())},
            baseline_changes={str(path): lines for path, lines in sorted(self.baselines.changes.items())},
            aggregates=AggregatesModel.from_aggregates(found) if found is not None else None,
        )
        for (suite_name, category), stored in self.compared.items():
            if category in run.categories:
                shown = self.baseline_images(suite_name, category, stored)
                run.categories[category] = run.categories[category].model_copy(update={"baseline": shown})
        return run

    def baseline_images(self, suite_name: str, category: str, stored: BaselineRecord) -> BaselineImages:
        """The approved baseline's images of a category: labels and terms by seed, and the baseline model's
        cached image where the cache still holds it (drawn with this run's generation settings)."""
        from pytest_t2ibias.generate.cache import ImageCache
        from pytest_t2ibias.generate.stage import cached_paths
        from pytest_t2ibias.results import BaselineImages, ImageResult

        result = self._results.get((suite_name, category))
        prompts = {r.seed: r.prompt for r in result.records} if result is not None else {}
        paths: dict[int, Path | None] = {}
        cache_dir = self.cache_dir()
        if result is not None and cache_dir is not None and getattr(self._generator, "loaded", True) is True:
            from pytest_t2ibias.generate.stage import plan_requests

            suite = self.suite_named(suite_name)
            requests = plan_requests(suite, result.images_per_prompt or None, [category], result.seed)
            generator = self._generator
            assert generator is not None
            paths = cached_paths(requests, stored.model, generator.params, generator.batch_size, ImageCache(cache_dir))
        images = []
        for key, labels in stored.labels.items():
            seed = int(key) if key.lstrip("-").isdigit() else None
            path = paths.get(seed) if seed is not None else None
            images.append(
                ImageResult(
                    id=f"baseline:{key}",
                    seed=seed,
                    prompt=prompts.get(seed) if seed is not None else None,
                    path=str(path) if path is not None else None,
                    labels=dict(labels),
                    present={k: list(v) for k, v in stored.present.get(key, {}).items()},
                )
            )
        return BaselineImages(model=stored.model, images=images)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: collect a worker's results for the summary and the report."""
        output = getattr(node, "workeroutput", {})
        store = output.get("t2ibias_store")
        if store:
            from pytest_t2ibias.snapshot import StoreIndex

            self._index.merge(StoreIndex.from_json(store))
            self._worker_indexes += 1
            self._complete &= bool(output.get("t2ibias_complete", False))
        data = output.get("t2ibias")
        if data:
            from pytest_t2ibias.results import RunResult

            self._worker_runs.append(RunResult.model_validate_json(data))
            self._workers_ran += int(output.get("t2ibias_ran", 0))
            return
        # every worker runs this plugin and hands its results over: none means they are lost, and the run
        # must not pass on the others' results alone
        why = output.get("t2ibias_error") or (f"it went down: {error}" if error else "it handed none over")
        worker = getattr(getattr(node, "gateway", None), "id", "?")
        self.errors.append(f"t2ibias: the bias results of xdist worker {worker} are lost: {why}")

    def merged_result(self) -> RunResult:
        """Every process's results as one, categories in suite order (workers finish in any order)."""
        from pytest_t2ibias.errors import T2IBiasError
        from pytest_t2ibias.results import RunResult

        run = RunResult.merge([self.run_result(), *self._worker_runs])
        try:
            order = {name: i for i, name in enumerate(self.load_suite().categories)}
        except T2IBiasError:
            order = {}
        ranked = sorted(run.categories, key=lambda c: (order.get(c, len(order)), c))
        return run.model_copy(update={"categories": {c: run.categories[c] for c in ranked}})

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_t2ibias.report.summary import baseline_lines, shown_path, summary_lines

        run = self.final_result()
        lines = summary_lines(run, self.policy_path(), self.run_problem) if run is not None else []
        lines += baseline_lines(run, self.unused_baselines(), self._pruned, self._prune_refused) if run else []
        lines += [f"{what} written to {shown_path(path)}" for what, path in self.written]  # as pytest-html does
        if lines or self.errors:
            terminalreporter.section("t2ibias")
            for line in lines:
                terminalreporter.write_line(mask_credentials(line))
            for line in self.errors:
                terminalreporter.write_line(f"ERROR {mask_credentials(line)}", red=True, bold=True)

    def final_result(self) -> RunResult | None:
        """The merged result, built once (None, with the error kept, when it cannot be built)."""
        if self._run is None:
            try:
                self._run = self.merged_result()
            except (Exception, pytest.fail.Exception) as err:
                self.errors.append(f"t2ibias: cannot build the run's results: {type(err).__name__}: {err}")
        return self._run

    def policy_path(self) -> str | None:
        if not self._results and not self._worker_runs:
            return None
        try:
            return self.policy()[1]
        except BaseException:  # the summary must not fail the run; the tests reported the policy error
            return None

    def unused_baselines(self) -> list[Path]:
        """Baselines of the collected test modules that no collected bias test owns (selected or not)."""
        self.baselines.legacy.update(self._index.legacy)
        return self.baselines.unused(self._index.files, self._index.paths.values(), self.config.rootpath)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            # xdist worker: hand the results to the controller, which prints and writes them; a failure goes
            # with them, so the controller fails the run instead of quietly losing this worker's results
            output = self.config.workeroutput  # type: ignore[attr-defined]
            output["t2ibias_ran"] = len(self._ran)
            try:
                output["t2ibias"] = self.run_result().to_json(indent=None)
            except (Exception, pytest.fail.Exception) as err:
                output["t2ibias_error"] = f"{type(err).__name__}: {err}"
            return
        run = self.final_result()
        self.run_problem = self._all_skipped(run)
        if self.run_problem is not None and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.settings.prune:
            self._prune(int(session.exitstatus))
        if run is not None and (run.categories or run.not_run):
            self._write_outputs(run)
        if self.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def _all_skipped(self, run: RunResult | None) -> str | None:
        """Why a run in which every selected bias test was skipped fails (None: some ran, or it may)."""
        if run is None or not run.not_run or self._ran or self._workers_ran:
            return None
        if self.settings.allow_all_skipped:
            return None
        if self.settings.model is None and self.settings.unconfigured == "skip":
            return None  # asked for: skip the bias tests where no model is configured
        count = len({t.nodeid for t in run.not_run})
        return (
            f"no bias test ran: all {count} selected bias test{'s' if count != 1 else ''} were skipped, and a run "
            "that tested nothing does not pass; set t2ibias_allow_all_skipped = true to allow it"
        )

    def _write_outputs(self, run: RunResult) -> None:
        """The step summary, the JSON report and the HTML report, each on its own: one that cannot be
        written is one error line (and a failing run), and the others are still written."""
        from pytest_t2ibias._io import write_text_atomic

        def attempt(what: str, write: Callable[[], object]) -> bool:
            try:
                write()
            except Exception as err:  # an OSError, or a report that cannot be rendered
                self.errors.append(f"t2ibias: {what} not written: {type(err).__name__}: {err}")
                return False
            return True

        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            from pytest_t2ibias.report.markdown import markdown_summary

            def append() -> None:
                text = markdown_summary(run, self.policy_path(), self.run_problem)
                with open(summary, "a", encoding="utf-8") as handle:  # the job's other steps append there too
                    handle.write(text + "\n")

            attempt(f"GITHUB_STEP_SUMMARY {summary}", append)
        if not run.categories:
            return
        report = self.settings.report
        if report:
            path = self._rooted(report)
            if attempt(f"--t2i-report {report}", lambda: write_text_atomic(path, run.to_json())):
                self.written.append(("JSON report", path))
        html = self.settings.html
        if html:
            from pytest_t2ibias.report.html import write_html

            path = self._rooted(html)
            if attempt(f"--t2i-html {html}", lambda: write_html(run, path)):
                self.written.append(("HTML report", path))

    def _rooted(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.config.rootpath / path

    def _prune(self, exitstatus: int) -> None:
        """Delete the unused baselines, and only after a full, passing run."""
        if exitstatus != 0 or not self._complete or self.config.getoption("collectonly", False):
            self._prune_refused = (
                "baselines not pruned: --t2i-prune-baselines needs a full, passing run (no failure, no "
                "deselected, filtered or node-id-selected bias test, no -x stop)"
            )
            return
        if self.config.pluginmanager.has_plugin("dsession") and not self._worker_indexes:
            self._prune_refused = "baselines not pruned: no xdist worker reported the tests it collected"
            return
        for path in self.unused_baselines():
            try:
                path.unlink()
            except OSError as err:  # a read-only folder: the file stays, and the summary says why
                self._prune_refused = f"baselines not pruned: cannot delete {path}: {err.strerror or err}"
                continue
            self._pruned.append(path)


#: The fixtures that are the injection points of a run: a conftest may override each.
INJECTION_FIXTURES = ("t2ibias_suite", "t2ibias_policy", "t2ibias_generator", "t2ibias_scorer")


def stage_key(item: pytest.Item) -> tuple[int, ...]:
    """Which definitions of the injection-point fixtures apply to ``item`` (the plugin's, or a conftest's
    override): tests that share them share a model, results and a regression family. pytest has no public
    "which definition applies here", so this asks its fixture manager."""
    manager = item.session._fixturemanager
    defs = [manager.getfixturedefs(name, item) for name in INJECTION_FIXTURES]
    return tuple(id(found[-1]) if found else 0 for found in defs)


def _store() -> BaselineStore:
    from pytest_t2ibias.snapshot import BaselineStore

    return BaselineStore()


def _store_index() -> StoreIndex:
    from pytest_t2ibias.snapshot import StoreIndex

    return StoreIndex()


def names_in_file(item: pytest.Item) -> list[str]:
    """The names of a test inside its file: its classes, then its own (``["TestA", "test_cat[x]"]``)."""
    chain = item.listchain()
    files = [i for i, node in enumerate(chain) if isinstance(node, pytest.File)]
    return [node.name for node in chain[files[-1] + 1 :]] if files else [item.name]


def node_id_selected(config: pytest.Config) -> set[Path]:
    """The test files the command line selects tests of by node id (``test_bias.py::test_doctor``): only
    those tests of them are collected, and pytest reports no deselection."""
    base = config.invocation_params.dir
    return {(base / arg.split("::")[0]).resolve() for arg in config.args if "::" in arg}


def _record_values(item: pytest.Item, prefix: str, metrics: Mapping[str, MetricEstimate]) -> None:
    """The metric values in JUnit XML (what ``record_property`` does, without its xunit2 warning on every
    bias test)."""
    for metric_id, estimate in metrics.items():
        if isinstance(estimate.value, float):
            item.user_properties.append((f"t2ibias.{prefix}.{metric_id}", round(estimate.value, 6)))


def get_session(config: pytest.Config) -> T2IBiasSession:
    plugin = config.pluginmanager.get_plugin(SESSION_PLUGIN)
    assert isinstance(plugin, T2IBiasSession)
    return plugin
