"""Per-run state of the plugin: settings, lazily built stages, evaluated categories, the run's family.

Built in ``pytest_configure`` and registered as a plugin object (as xdist's ``DSession``): every process
(xdist workers included) keeps its own; the image cache is shared on disk. Nothing heavy is imported
until a bias test needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.family import RegressionFamily
    from pytest_t2ibias.judge.policy import Policy
    from pytest_t2ibias.judge.verdicts import Check
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.results import RunResult
    from pytest_t2ibias.snapshot import StoredBaseline
    from pytest_t2ibias.suites.schema import Suite

SESSION_PLUGIN = "t2ibias-session"
NO_MODEL = (
    "t2ibias: no model configured; pass --t2i-model (a diffusers hub id, a local pipeline folder, 'tiny' or "
    "'synthetic') or set `t2ibias_model` under [tool.pytest.ini_options]"
)


def setting(config: pytest.Config, name: str) -> str | None:
    """A setting: the command line, else the ini file, else its default."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name)
    return None if value in (None, "") else str(value)


def int_setting(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"t2ibias: {name} must be an integer, got {value!r}") from None


def marker_category(item: pytest.Item) -> tuple[str | None, str | None]:
    """The (category, suite) a test's ``t2ibias`` marker names."""
    marker = item.get_closest_marker("t2ibias")
    if marker is None:
        return None, None
    category = marker.kwargs.get("category") or (marker.args[0] if marker.args else None)
    return category, marker.kwargs.get("suite")


@dataclass
class TestOutcome:
    nodeid: str
    category: str
    checks: list[Check]


TestOutcome.__test__ = False  # type: ignore[attr-defined]


@dataclass(eq=False)  # a plugin object must stay hashable
class T2IBiasSession:
    """Per-run state: settings, lazily built engines, evaluated categories, and the checks of each test."""

    config: pytest.Config
    update: bool
    _suites: dict[str, Suite] = field(default_factory=dict)
    _generator: ImageGenerator | None = None
    _annotator: ImageAnnotator | None = None
    _policy: tuple[Policy | None, str | None] | None = None
    _results: dict[tuple[str, str], CategoryResult] = field(default_factory=dict)
    outcomes: list[TestOutcome] = field(default_factory=list)
    _worker_runs: list[RunResult] = field(default_factory=list)
    _marked: list[pytest.Item] = field(default_factory=list)
    _family: dict[str, RegressionFamily] | None = None
    _baselines: dict[str, tuple[str | None, StoredBaseline]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return setting(self.config, name)

    @property
    def mode(self) -> str:
        return self.get("t2ibias_mode") or "strict"

    # -- the stages, built on first use ---------------------------------------------------------------

    def suite(self, name: str | None = None) -> Suite:
        from pytest_t2ibias.suites import SuiteError, load_suite

        key = name or self.get("t2ibias_suite") or "t2i-biasbench"
        if key not in self._suites:
            try:
                self._suites[key] = load_suite(self._path_or_name(key))
            except SuiteError as err:
                pytest.fail(f"t2ibias: {err}", pytrace=False)
        return self._suites[key]

    def _path_or_name(self, value: str) -> str:
        candidate = self.config.rootpath / value
        return str(candidate) if value.endswith((".yaml", ".yml")) and candidate.is_file() else value

    def generator(self) -> ImageGenerator:
        if self._generator is None:
            model = self.get("t2ibias_model")
            if model is None:
                pytest.skip(NO_MODEL)
            from pytest_t2ibias.errors import T2IBiasError
            from pytest_t2ibias.generate.factory import load_generator

            try:
                self._generator = load_generator(
                    model,
                    self.suite(),
                    device=self.get("t2ibias_device") or "auto",
                    dtype=self.get("t2ibias_dtype") or "auto",
                    steps=int_setting(self.get("t2ibias_steps"), "t2ibias_steps"),
                    batch_size=int_setting(self.get("t2ibias_batch_size"), "t2ibias_batch_size"),
                    revision=self.get("t2ibias_revision"),
                )
            except (T2IBiasError, ValueError) as err:
                pytest.fail(f"t2ibias: {err}", pytrace=False)
        return self._generator

    def annotator(self) -> ImageAnnotator:
        if self._annotator is None:
            from pytest_t2ibias.annotate.factory import load_annotator
            from pytest_t2ibias.errors import T2IBiasError

            model = self.get("t2ibias_model") or ""
            default = "synthetic" if model.startswith("synthetic") else "open_clip:ViT-L-14/openai"
            spec = self.get("t2ibias_scorer") or default
            try:
                self._annotator = load_annotator(
                    spec,
                    self.suite(),
                    mode=self.mode,  # type: ignore[arg-type]
                    device=self.get("t2ibias_device") or "auto",
                    dtype=self.get("t2ibias_dtype") or "auto",
                )
            except (T2IBiasError, ValueError, FileNotFoundError) as err:
                pytest.fail(f"t2ibias: {err}", pytrace=False)
        return self._annotator

    def policy(self) -> tuple[Policy | None, str | None]:
        if self._policy is None:
            from pytest_t2ibias.judge.policy import PolicyError, find_policy

            folder = self.get("t2ibias_thresholds")
            path = Path(folder) if folder else self.config.rootpath / "thresholds"
            if not path.is_absolute():
                path = self.config.rootpath / path
            if folder and not path.is_dir():
                pytest.fail(f"t2ibias: thresholds folder {path} does not exist", pytrace=False)
            try:
                found = find_policy(path, self.suite())
            except PolicyError as err:
                pytest.fail(f"t2ibias: {err}", pytrace=False)
            self._policy = (found[0], str(found[1])) if found else (None, None)
        return self._policy

    def cache_dir(self) -> Path | None:
        value = self.get("t2ibias_cache")
        if value is not None and value.lower() == "none":
            return None
        path = Path(value) if value else Path(".t2ibias_cache")
        return path if path.is_absolute() else self.config.rootpath / path

    def evaluate(self, category: str, suite_name: str | None = None) -> CategoryResult:
        """generate -> annotate -> measure (+ intervals) for one category, once per session."""
        from pytest_t2ibias.generate.cache import ImageCache
        from pytest_t2ibias.pipeline import evaluate_suite

        suite = self.suite(suite_name)
        key = (suite.name, category)
        if key in self._results:
            return self._results[key]
        if category not in suite.categories:
            pytest.fail(
                f"t2ibias: suite {suite.name!r} has no category {category!r}; categories: {list(suite.categories)}",
                pytrace=False,
            )
        generator, annotator = self.generator(), self.annotator()
        cache_dir = self.cache_dir()
        evaluation = evaluate_suite(
            suite,
            generator,
            annotator,
            mode=self.mode,  # type: ignore[arg-type]
            images_per_prompt=int_setting(self.get("t2ibias_images_per_prompt"), "t2ibias_images_per_prompt"),
            categories=[category],
            cache=ImageCache(cache_dir) if cache_dir else None,
        )
        self._results[key] = evaluation.categories[category]
        return self._results[key]

    # -- baselines, read once per session ---------------------------------------------------------------

    def _baseline_file(self, path: str) -> tuple[str | None, StoredBaseline]:
        if path not in self._baselines:
            from pytest_t2ibias.judge.baseline import CorruptBaselineError, parse_baseline

            try:
                raw = Path(path).read_bytes()
            except FileNotFoundError:
                self._baselines[path] = (None, None)
                return self._baselines[path]
            except OSError as err:
                self._baselines[path] = ("", f"{path}: cannot read baseline: {err.strerror}")
                return self._baselines[path]
            # an undecodable file must read as corrupt, not as missing
            text = raw.decode("utf-8", errors="replace")
            try:
                stored: StoredBaseline = parse_baseline(text, path)
            except CorruptBaselineError as err:
                stored = str(err)
            self._baselines[path] = (text, stored)
        return self._baselines[path]

    def stored_baseline(self, path: str) -> StoredBaseline:
        """The baseline at ``path``: the parsed record, why it is corrupt, or None when there is none."""
        return self._baseline_file(path)[1]

    def stored_text(self, path: str) -> str | None:
        return self._baseline_file(path)[0]

    # -- the run's family of regression checks (one correction across all of them) -------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # after -k/-m deselection: only the tests that will run form the family
        self._marked = [
            item
            for item in session.items
            if item.get_closest_marker("t2ibias") is not None and "t2ibias_result" in getattr(item, "fixturenames", ())
        ]

    def family_for(self, nodeid: str, result: CategoryResult) -> Callable[[BaselineRecord], RegressionFamily]:
        """The comparisons and run-level adjusted p-values of one test, or the test's own family."""
        from pytest_t2ibias.judge.compare import comparisons_for
        from pytest_t2ibias.judge.family import build_family

        family = self.run_family()
        if nodeid in family:
            return lambda stored: family[nodeid]
        policy = self.policy()[0]
        rules = policy.rules_for(result.category) if policy else {}

        def local(stored: BaselineRecord) -> RegressionFamily:
            margin = policy.margin_test if policy else False
            comparisons = comparisons_for(self.suite(), result, stored, rules, margin)
            return build_family({nodeid: comparisons}, {nodeid: rules}, policy)[nodeid]

        return local

    def run_family(self) -> dict[str, RegressionFamily]:
        """Compare every marked bias test with its baseline up front, then correct across all of them.

        Holm needs every p-value of the family before any verdict, so the first regression check of the
        run evaluates every marked category (each once per session; images come from the shared cache).
        """
        if self._family is not None:
            return self._family
        self._family = {}
        policy = self.policy()[0]
        if policy is None or self.update:
            return self._family
        from syrupy.location import PyTestLocation

        from pytest_t2ibias.judge.baseline import BaselineRecord, staleness
        from pytest_t2ibias.judge.compare import Comparison, comparisons_for
        from pytest_t2ibias.judge.family import build_family
        from pytest_t2ibias.judge.policy import MetricRule
        from pytest_t2ibias.snapshot import BaselineExtension

        extension = BaselineExtension()
        comparisons: dict[str, dict[str, Comparison]] = {}
        rules: dict[str, dict[str, MetricRule]] = {}
        for item in self._marked:
            category, suite_name = marker_category(item)
            suite = self.suite(suite_name)
            if category not in suite.categories:
                continue
            test_rules = {m: r for m, r in policy.rules_for(category).items() if r.regression is not None}
            if not test_rules:
                continue
            stored = self.stored_baseline(str(extension.get_location(test_location=PyTestLocation(item), index=0)))
            if not isinstance(stored, BaselineRecord):
                continue  # missing or corrupt: the test itself reports it
            result = self.evaluate(category, suite_name)
            if staleness(stored, BaselineRecord.from_result(result)):
                continue  # the test itself reports the stale baseline
            comparisons[item.nodeid] = comparisons_for(suite, result, stored, test_rules, policy.margin_test)
            rules[item.nodeid] = test_rules
        self._family = build_family(comparisons, rules, policy)
        return self._family

    # -- results and the summary ------------------------------------------------------------------------

    def run_result(self) -> RunResult:
        """This process's results in the one result model."""
        from pytest_t2ibias.results import BiasTestResult, RunResult

        tests = [BiasTestResult.from_checks(o.nodeid, o.category, o.checks) for o in self.outcomes]
        return RunResult.from_results(self._results.values(), tests)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: collect a worker's results for the summary and the report."""
        data = getattr(node, "workeroutput", {}).get("t2ibias")
        if data:
            from pytest_t2ibias.results import RunResult

            self._worker_runs.append(RunResult.model_validate_json(data))

    def merged_result(self) -> RunResult:
        from pytest_t2ibias.results import RunResult

        return RunResult.merge([self.run_result(), *self._worker_runs])

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_t2ibias.report.summary import summary_lines

        lines = summary_lines(self.merged_result(), self.policy_path())
        if lines:
            terminalreporter.section("t2ibias")
            for line in lines:
                terminalreporter.write_line(line)

    def policy_path(self) -> str | None:
        if not self._results and not self._worker_runs:
            return None
        try:
            return self.policy()[1]
        except BaseException:  # the summary must not fail the run; the tests reported the policy error
            return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            # xdist worker: hand the results to the controller, which prints and writes them
            self.config.workeroutput["t2ibias"] = self.run_result().to_json(indent=None)  # type: ignore[attr-defined]
            return
        report = self.get("t2ibias_report")
        run = self.merged_result()
        if not report or not run.categories:
            return
        from pytest_t2ibias._io import write_text_atomic

        path = Path(report)
        write_text_atomic(path if path.is_absolute() else self.config.rootpath / path, run.to_json())


def get_session(config: pytest.Config) -> T2IBiasSession:
    plugin = config.pluginmanager.get_plugin(SESSION_PLUGIN)
    assert isinstance(plugin, T2IBiasSession)
    return plugin
