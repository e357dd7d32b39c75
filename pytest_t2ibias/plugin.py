"""The pytest plugin: options, markers, session state, fixtures and the run's summary.

Loaded in every pytest run of an environment where the package is installed, so this module imports
nothing heavy: torch, diffusers, transformers and open_clip load only inside the fixtures that need them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.baseline import BaselineRecord
    from pytest_t2ibias.compare import Comparison
    from pytest_t2ibias.gate import Family
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.judge import Check
    from pytest_t2ibias.policy import Policy
    from pytest_t2ibias.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

SESSION_PLUGIN = "t2ibias-session"
NO_MODEL = (
    "t2ibias: no model configured; pass --t2i-model (a diffusers hub id, a local pipeline folder, 'tiny' or "
    "'synthetic') or set `t2ibias_model` under [tool.pytest.ini_options]"
)

#: (option, ini name, help, default): every setting under one prefix; the command line wins over the ini.
SETTINGS: list[tuple[str, str, str, str | None]] = [
    ("--t2i-model", "t2ibias_model", "Model: diffusers hub id, local pipeline folder, 'tiny' or 'synthetic'.", None),
    (
        "--t2i-scorer",
        "t2ibias_scorer",
        "Scorer: tiny, open_clip:ARCH/PRETRAINED, hf:ID, vqa:ID, captioner:ID, "
        "labels:PATH, synthetic (default: open_clip:ViT-L-14/openai; synthetic for the synthetic model).",
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
        "Image cache folder (default: .t2ibias_cache in the rootdir; 'none' disables).",
        None,
    ),
    ("--t2i-mode", "t2ibias_mode", "Metric mode: strict (default, for gating) or paper.", "strict"),
    (
        "--t2i-thresholds",
        "t2ibias_thresholds",
        "Folder of threshold policies (default: thresholds/ in the rootdir).",
        None,
    ),
    ("--t2i-report", "t2ibias_report", "Write the run's results as JSON to this path.", None),
]


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
        help="Allow updating baselines when the CI environment variable is set.",
    )


def setting(config: pytest.Config, name: str) -> str | None:
    """A setting: the command line, else the ini file, else its default."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name)
    return None if value in (None, "") else str(value)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "t2ibias(category, suite=None): a text-to-image bias test of one category of a suite."
    )
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one unless --t2i-device=cpu.")
    mode = setting(config, "t2ibias_mode")
    if mode not in ("paper", "strict"):
        raise pytest.UsageError(f"t2ibias: --t2i-mode / t2ibias_mode must be 'paper' or 'strict', got {mode!r}")
    for name in ("t2ibias_images_per_prompt", "t2ibias_steps", "t2ibias_batch_size"):
        _int(setting(config, name), name)  # a usage error now, not an error in every test
    update = bool(config.getoption("t2ibias_update")) or bool(getattr(config.option, "update_snapshots", False))
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    if update and in_ci and not config.getoption("t2ibias_force_update"):
        raise pytest.UsageError(
            "t2ibias: refusing to update baselines because CI is set; approve baselines locally, "
            "or pass --t2i-force-update"
        )
    if config.getoption("t2ibias_update"):
        config.option.update_snapshots = True  # syrupy writes the baselines
    # every process (xdist workers included) keeps its own state; the image cache is shared on disk
    config.pluginmanager.register(T2IBiasSession(config, update), SESSION_PLUGIN)


@dataclass
class TestOutcome:
    nodeid: str
    category: str
    checks: list[Check]


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
    _worker_payloads: list[dict[str, Any]] = field(default_factory=list)
    _marked: list[pytest.Item] = field(default_factory=list)
    _family: dict[str, Family] | None = None

    def get(self, name: str) -> str | None:
        return setting(self.config, name)

    @property
    def mode(self) -> str:
        return self.get("t2ibias_mode") or "strict"

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
            from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
            from pytest_t2ibias.generate.factory import load_generator

            try:
                self._generator = load_generator(
                    model,
                    self.suite(),
                    device=self.get("t2ibias_device") or "auto",
                    dtype=self.get("t2ibias_dtype") or "auto",
                    steps=_int(self.get("t2ibias_steps"), "t2ibias_steps"),
                    batch_size=_int(self.get("t2ibias_batch_size"), "t2ibias_batch_size"),
                    revision=self.get("t2ibias_revision"),
                )
            except (ModelLoadError, ValueError) as err:
                pytest.fail(f"t2ibias: {err}", pytrace=False)
        return self._generator

    def annotator(self) -> ImageAnnotator:
        if self._annotator is None:
            from pytest_t2ibias.annotate.factory import load_annotator
            from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError

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
            except (ModelLoadError, ValueError, FileNotFoundError) as err:
                pytest.fail(f"t2ibias: {err}", pytrace=False)
        return self._annotator

    def policy(self) -> tuple[Policy | None, str | None]:
        if self._policy is None:
            from pytest_t2ibias.policy import PolicyError, find_policy

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
        from pytest_t2ibias.evaluate import evaluate_suite
        from pytest_t2ibias.generate.cache import ImageCache
        from pytest_t2ibias.result import CategoryResult, with_intervals

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
        per_prompt = _int(self.get("t2ibias_images_per_prompt"), "t2ibias_images_per_prompt")
        evaluation = evaluate_suite(
            suite,
            generator,
            annotator,
            mode=self.mode,  # type: ignore[arg-type]
            images_per_prompt=per_prompt,
            categories=[category],
            cache=ImageCache(cache_dir) if cache_dir else None,
        )
        metrics = evaluation.result.categories[category]
        records = evaluation.records[category]
        result = CategoryResult(
            category=category,
            suite=suite.name,
            suite_hash=suite.fingerprint(),
            mode=self.mode,  # type: ignore[arg-type]
            model=generator.fingerprint,
            scorer=annotator.scorer_id,
            n=metrics.n,
            metrics=with_intervals(suite, metrics, records, self.mode, seed=suite.seed),  # type: ignore[arg-type]
            records=records,
            seed=suite.seed,
            images_per_prompt=per_prompt or suite.images_per_prompt,
        )
        self._results[key] = result
        return result

    # -- reporting ------------------------------------------------------------------------------------

    # -- the run's family of regression checks (Holm across all of them) -----------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # after -k/-m deselection: only the tests that will run form the family
        self._marked = [
            item
            for item in session.items
            if item.get_closest_marker("t2ibias") is not None and "t2ibias_result" in getattr(item, "fixturenames", ())
        ]

    def family_for(self, nodeid: str, category: str) -> Callable[[CategoryResult, BaselineRecord], Family]:
        """The comparisons and run-level adjusted p-values of one test, or a test-local Holm."""
        from pytest_t2ibias.gate import make_local_family

        policy = self.policy()[0]
        alpha = policy.alpha if policy else 0.01
        family = self.run_family()
        if nodeid in family:
            return lambda result, stored: family[nodeid]
        rules = policy.rules_for(category) if policy else {}
        return make_local_family(self.suite(), rules, alpha, policy.margin_test if policy else False)

    def run_family(self) -> dict[str, Family]:
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

        from pytest_t2ibias.baseline import BaselineExtension, BaselineRecord, CorruptBaselineError, parse_baseline
        from pytest_t2ibias.baseline import staleness as baseline_staleness
        from pytest_t2ibias.gate import comparisons_for
        from pytest_t2ibias.stats import benjamini_hochberg, holm

        extension = BaselineExtension()
        found: dict[str, tuple[dict[str, Comparison], dict[str, str]]] = {}
        for item in self._marked:
            marker = item.get_closest_marker("t2ibias")
            assert marker is not None
            category = marker.kwargs.get("category") or (marker.args[0] if marker.args else None)
            suite_name = marker.kwargs.get("suite")
            suite = self.suite(suite_name)
            if category not in suite.categories:
                continue
            rules = {m: r for m, r in policy.rules_for(category).items() if r.regression is not None}
            if not rules:
                continue
            path = Path(extension.get_location(test_location=PyTestLocation(item), index=0))
            if not path.is_file():
                continue
            try:
                stored = parse_baseline(path.read_text(encoding="utf-8"), str(path))
            except (CorruptBaselineError, OSError, UnicodeDecodeError):
                continue  # the test itself reports the corrupt file
            result = self.evaluate(category, suite_name)
            if baseline_staleness(stored, BaselineRecord.from_result(result)):
                continue  # the test itself reports the stale baseline
            comparisons = comparisons_for(suite, result, stored, rules, policy.margin_test)
            found[item.nodeid] = (comparisons, {m: rules[m].severity for m in comparisons})
        adjusted: dict[str, dict[str, float]] = {nodeid: {} for nodeid in found}
        for severity, correction in (("fail", policy.correction), ("warn", policy.warn_correction)):
            keys = [(n, m) for n, (comps, sev) in found.items() for m in comps if sev[m] == severity]
            raw = [found[n][0][m].p_value for n, m in keys]
            if correction == "holm":
                values = holm(raw)
            elif correction == "bh":
                values = benjamini_hochberg(raw)
            else:
                values = raw
            for (n, m), value in zip(keys, values, strict=True):
                adjusted[n][m] = value
        self._family = {n: (found[n][0], adjusted[n], policy.alpha) for n in found}
        return self._family

    def payload(self) -> dict[str, Any]:
        from pytest_t2ibias.report.summary import results_json

        return results_json(list(self._results.values()), self.outcomes)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: collect a worker's results for the summary and the report."""
        data = getattr(node, "workeroutput", {}).get("t2ibias")
        if data:
            self._worker_payloads.append(json.loads(data))

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_t2ibias.report.summary import summary_lines

        lines = summary_lines(self.merged_payload(), self.policy_path())
        if lines:
            terminalreporter.section("t2ibias")
            for line in lines:
                terminalreporter.write_line(line)

    def merged_payload(self) -> dict[str, Any]:
        from pytest_t2ibias.report.summary import merge_payloads

        return merge_payloads([self.payload(), *self._worker_payloads])

    def policy_path(self) -> str | None:
        if not self._results and not self._worker_payloads:
            return None
        try:
            return self.policy()[1]
        except BaseException:  # the summary must not fail the run; the tests reported the policy error
            return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            # xdist worker: hand the results to the controller, which prints and writes them
            self.config.workeroutput["t2ibias"] = json.dumps(self.payload())  # type: ignore[attr-defined]
            return
        report = self.get("t2ibias_report")
        payload = self.merged_payload()
        if not report or not payload["categories"]:
            return
        from pytest_t2ibias.atomic import write_text_atomic

        path = Path(report)
        write_text_atomic(path if path.is_absolute() else self.config.rootpath / path, json.dumps(payload, indent=1))


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"t2ibias: {name} must be an integer, got {value!r}") from None


def _session(config: pytest.Config) -> T2IBiasSession:
    plugin = config.pluginmanager.get_plugin(SESSION_PLUGIN)
    assert isinstance(plugin, T2IBiasSession)
    return plugin


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is None:
        return
    device = setting(item.config, "t2ibias_device") or "auto"
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        pytest.skip("t2ibias: needs a CUDA device (none here); run with --t2i-device=cpu to run it on the CPU")


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def t2ibias_mode(pytestconfig: pytest.Config) -> str:
    """The metric mode of this run (``--t2i-mode`` or the ``t2ibias_mode`` ini value)."""
    return _session(pytestconfig).mode


@pytest.fixture(scope="session")
def t2ibias_suite(pytestconfig: pytest.Config) -> Suite:
    """The prompt suite of this run (``--t2i-suite`` or the ``t2ibias_suite`` ini value)."""
    return _session(pytestconfig).suite()


@pytest.fixture(scope="session")
def t2ibias_generator(pytestconfig: pytest.Config) -> ImageGenerator:
    """The configured model; bias tests skip, saying how to configure one, when there is none."""
    return _session(pytestconfig).generator()


@pytest.fixture(scope="session")
def t2ibias_scorer(pytestconfig: pytest.Config) -> ImageAnnotator:
    """The configured scorer (annotator)."""
    return _session(pytestconfig).annotator()


@pytest.fixture(scope="session")
def t2ibias_policy(pytestconfig: pytest.Config) -> Policy | None:
    """The threshold policy for the run's suite, or None when the thresholds folder has none."""
    return _session(pytestconfig).policy()[0]


@pytest.fixture
def t2ibias_evaluate(request: pytest.FixtureRequest) -> Callable[..., CategoryResult]:
    """``evaluate(category, suite=None)``: the category's result, gated by the policy and the test's baseline."""
    from dataclasses import replace

    from pytest_t2ibias.gate import Gate

    session = _session(request.config)
    used: list[str] = []

    def evaluate(category: str, suite: str | None = None) -> CategoryResult:
        if used:
            raise ValueError(f"one bias category per test (this test already evaluated {used[0]!r})")
        used.append(category)
        result = session.evaluate(category, suite)
        policy = session.policy()[0]
        rules = policy.rules_for(category) if policy is not None else {}
        snapshot = request.getfixturevalue("snapshot")

        def record(checks: list[Check]) -> None:
            # one outcome per test; a check two helpers both made is kept once
            outcome = next((o for o in session.outcomes if o.nodeid == request.node.nodeid), None)
            if outcome is None:
                outcome = TestOutcome(request.node.nodeid, category, [])
                session.outcomes.append(outcome)
            seen = {(c.metric, c.kind, c.threshold) for c in outcome.checks}
            outcome.checks += [c for c in checks if (c.metric, c.kind, c.threshold) not in seen]

        for metric_id, estimate in result.metrics.items():
            if isinstance(estimate.value, float):
                # what record_property does, without its xunit2 warning on every bias test
                request.node.user_properties.append((f"t2ibias.{category}.{metric_id}", round(estimate.value, 6)))
        family = session.family_for(request.node.nodeid, category)
        return replace(result, gate=Gate(rules, snapshot, session.update, record, family))

    return evaluate


@pytest.fixture
def t2ibias_result(request: pytest.FixtureRequest, t2ibias_evaluate: Callable[..., CategoryResult]) -> CategoryResult:
    """The result of the category named by the test's ``@pytest.mark.t2ibias(category=...)`` marker."""
    marker = request.node.get_closest_marker("t2ibias")
    category = marker.kwargs.get("category") if marker else None
    if marker and category is None and marker.args:
        category = marker.args[0]
    if category is None:
        pytest.fail(
            f"{request.node.nodeid}: t2ibias_result needs @pytest.mark.t2ibias(category=...) "
            "(or use t2ibias_evaluate(category))",
            pytrace=False,
        )
    return t2ibias_evaluate(category, marker.kwargs.get("suite") if marker else None)
