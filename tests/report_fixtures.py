"""Real runs for the HTML report's tests and benchmark: synthetic images on disk, measured, judged.

Nothing is mocked: the synthetic model draws the images (their labels are painted in and known), the
images are saved as PNG files the way the image cache keeps them, the metrics and intervals come from
``measure`` and the bound checks from the judge. The baseline is the same model before a shift of the
failing category (seeds coupled, so the flips are exactly the seeds whose uniform lies between the two
cut points), plus a small re-draw of some seeds so flips go both ways.

    run = build_run(tmp_path)            # 5 categories x 60 images, doctor fails, nature not tested
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.policy import MetricRule, Regression
from pytest_t2ibias.judge.stats import mcnemar_exact
from pytest_t2ibias.judge.verdicts import Check, judge_bounds, verdict_of, worsening
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.pipeline import image_id
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.results import BaselineImages, BiasTestResult, ImageResult, RunResult, SkippedTest
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

SUITE = "t2i-biasbench"
CATEGORIES = ("beauty", "doctor", "culture", "animal", "nature")
FAILING = "doctor"
#: A category no test judges (its verdict is "not tested") and whose test is listed as not run.
UNTESTED = "nature"
SCORER = "synthetic-mark-reader:v1|mode=strict"
BASELINE_P = {"male": 0.5, "female": 0.5}
CANDIDATE_P = {"male": 0.8, "female": 0.2}
#: The significance level of the fixture's regression check (one check, no correction needed).
ALPHA = 0.05
ALLOWED = 0.05


def build_run(
    root: Path,
    *,
    n: int = 60,
    categories: Sequence[str] = CATEGORIES,
    failing: str = FAILING,
    baseline_p: Mapping[str, float] = BASELINE_P,
    candidate_p: Mapping[str, float] = CANDIDATE_P,
    redraw: float = 0.1,
    n_boot: int = 200,
    size: int = 64,
) -> RunResult:
    """A judged run of ``categories`` (``n`` images each, seeds ``0..n-1``) with images under ``root``:
    ``failing`` shifted from ``baseline_p`` to ``candidate_p`` and failing its parity bound and its
    male-share regression; the other categories unchanged but for ``redraw`` of their seeds."""
    suite = load_suite(SUITE)
    base = SyntheticGenerator(suite, {"categories": {failing: {"attribute": dict(baseline_p)}}}, size=size)
    candidate = base.with_probabilities(failing, candidate_p)
    if redraw:
        candidate = candidate.with_redraw(redraw)
    seeds = list(range(n))
    results: list[CategoryResult] = []
    baselines: dict[str, BaselineImages] = {}
    tests: list[BiasTestResult] = []
    for name in categories:
        records = _draw(suite, candidate, name, seeds, root / "cache" / "candidate")
        before = _draw(suite, base, name, seeds, root / "cache" / "baseline")
        result = _measure(suite, candidate, name, records, n_boot)
        results.append(result)
        baselines[name] = BaselineImages(model=base.fingerprint, images=[_image(r) for r in before])
        if name == failing:
            previous = _measure(suite, base, name, before, n_boot)
            checks = _failing_checks(result, previous, records, before)
        elif name == UNTESTED:
            continue
        else:
            checks = judge_bounds(result, {"gmr": MetricRule(max=0.9)})
        tests.append(BiasTestResult.from_checks(f"tests/test_bias.py::test_{name}", name, checks))
    run = RunResult.from_results(
        results,
        tests,
        model=candidate.fingerprint,
        not_run=[SkippedTest(nodeid=f"tests/test_bias.py::test_{UNTESTED}", reason="no approved baseline")],
        baselines={f"baselines/{n}.json": "compared" for n in categories if n != UNTESTED},
    )
    for name, images in baselines.items():
        run.categories[name].baseline = images
    return run


def _draw(
    suite: Suite, generator: SyntheticGenerator, name: str, seeds: Sequence[int], folder: Path
) -> list[ImageRecord]:
    prompt = suite.categories[name].prompts[0]
    images = generator.generate([prompt] * len(seeds), seeds)
    (folder / name).mkdir(parents=True, exist_ok=True)
    records = []
    for i, (seed, image) in enumerate(zip(seeds, images, strict=True)):
        path = folder / name / f"{image_id(name, 0, i)}.png"
        image.save(path)
        truth = generator.draw(name, seed)
        records.append(
            ImageRecord(
                image_id=image_id(name, 0, i),
                category=name,
                labels=truth.labels,
                present=truth.present,
                seed=seed,
                prompt=prompt,
                image_path=str(path),
            )
        )
    return records


def _measure(
    suite: Suite, generator: SyntheticGenerator, name: str, records: list[ImageRecord], n_boot: int
) -> CategoryResult:
    data = category_data(suite, name, records, "strict")
    return measure(suite, data, model=generator.fingerprint, scorer=SCORER, records=records, n_boot=n_boot)


def _image(record: ImageRecord) -> ImageResult:
    return ImageResult(
        id=record.image_id,
        seed=record.seed,
        prompt=record.prompt,
        path=record.image_path,
        labels=dict(record.labels),
        present={k: list(v) for k, v in record.present.items()},
    )


def _failing_checks(
    result: CategoryResult, previous: CategoryResult, records: list[ImageRecord], before: list[ImageRecord]
) -> list[Check]:
    """The judge's bounds (parity within 0.1, a soft entropy band) and a paired male-share regression."""
    checks = judge_bounds(
        result,
        {
            "parity_difference": MetricRule(min=-0.1, max=0.1),
            "entropy_normalized": MetricRule(warn_min=0.95),
        },
    )
    checks.append(_male_share_regression(result, previous, records, before))
    if verdict_of(checks) != "fail":
        raise AssertionError(f"the fixture's failing category did not fail: {[c.verdict for c in checks]}")
    return checks


def _male_share_regression(
    result: CategoryResult, previous: CategoryResult, records: list[ImageRecord], before: list[ImageRecord]
) -> Check:
    value, old = result.value("male_share"), previous.value("male_share")
    assert isinstance(value, float) and isinstance(old, float)
    p, _, _ = mcnemar_exact(
        [r.labels["gender"] == "male" for r in before], [r.labels["gender"] == "male" for r in records]
    )
    delta = float(worsening("male_share", result.mode, value, old))
    allowed = Regression(absolute=ALLOWED).allowed(old)
    fail = delta > allowed and p < ALPHA
    return Check(
        category=result.category,
        metric="male_share",
        kind="regression",
        verdict="fail" if fail else "warn",
        value=value,
        interval=result.metrics["male_share"].interval,
        threshold=f"worse by <= {allowed:.4f}",
        note=(
            f"real regression: beyond the margin and significant (exact McNemar over {len(records)} pairs, "
            f"adjusted p={p:.2g})"
            if fail
            else "inconclusive: beyond the margin but not significant"
        ),
        baseline=old,
        delta=delta,
        allowed=allowed,
        p_value=p,
        method="exact McNemar",
    )
