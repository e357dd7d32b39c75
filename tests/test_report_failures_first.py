"""The HTML report leads with what regressed (issue 26, items 6 and 7).

A failures-first section lists exactly the checks that fail or warn (nothing when all pass), with a strip
of each category's flips; the categories follow, failing first, the ones without a failure or warning in
a ``<details>`` (a failures-only view without scripts); the baselines table prints no absolute path of the
runner; under a scorer card the share chart's bars are the corrected shares, the raw ones a marker.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import CATEGORIES, FAILING, UNTESTED, build_run
from test_report_html import Node, parse, sections

from pytest_t2ibias.judge.verdicts import Check
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.metrics.scorer_card import build_card
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.report.charts import CANDIDATE_COLOUR, ShareBar, share_chart_svg
from pytest_t2ibias.report.html import category_views, render_html, write_html
from pytest_t2ibias.results import BiasTestResult, RunResult
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
SUITE_ORDER = [name for name in SUITE.categories if name in CATEGORIES]
#: A passing category the tests below turn into a warning.
WARNED = "animal"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return build_run(tmp_path_factory.mktemp("run"), n=40)


def _flagged(run: RunResult) -> set[tuple[str, str, str]]:
    return {(c.category, c.metric, c.verdict) for t in run.tests for c in t.checks if c.verdict != "pass"}


def _listed(doc: Node) -> set[tuple[str, str, str]]:
    section = next(n for n in doc.all("section") if n.attrs.get("id") == "failures")
    out = set()
    for block in section.all("div", "failure"):
        for row in block.all("tr")[1:]:
            out.add((block.attrs["data-category"], row.attrs["data-metric"], row.attrs["class"]))
    return out


def _with_warning(run: RunResult) -> RunResult:
    """The run with one check of ``WARNED`` (a passing category) turned into a warning."""
    warned = run.model_copy(deep=True)
    index = next(i for i, t in enumerate(warned.tests) if t.category == WARNED)
    test = warned.tests[index]
    first = test.checks[0]
    checks = [Check(**{**vars(first), "verdict": "warn", "note": "interval straddles the bound"}), *test.checks[1:]]
    warned.tests[index] = BiasTestResult.from_checks(test.nodeid, test.category, checks)
    return warned


# -- failures first ----------------------------------------------------------------------------------------


def test_the_failures_section_comes_first_and_lists_exactly_the_flagged_checks(run: RunResult) -> None:
    warned = _with_warning(run)
    page = render_html(warned, max_per_group=4)
    assert page.index('id="failures"') < page.index('<header id="top"') < page.index('class="category')
    doc = parse(page)
    assert _listed(doc) == _flagged(warned)
    assert {c for c, _, _ in _listed(doc)} == {FAILING, WARNED}
    # baseline -> candidate and the allowed change of the regression
    section = next(n for n in doc.all("section") if n.attrs.get("id") == "failures")
    regression = next(c for t in warned.tests for c in t.checks if c.kind == "regression" and c.verdict == "fail")
    row = next(r for r in section.all("tr") if r.attrs.get("data-metric") == regression.metric)
    cells = [td.text() for td in row.all("td")]
    assert f"{regression.baseline:.4f} -> {regression.value:.4f}" in cells[3]
    assert regression.allowed is not None and cells[4] == f"{regression.allowed:+.4f}"
    assert cells[5] == f"tests/test_bias.py::test_{FAILING}"


def test_the_failures_section_shows_a_strip_of_the_flips_linked_to_the_gallery(run: RunResult) -> None:
    doc = parse(render_html(run, max_per_group=4))
    block = next(b for b in doc.all("div", "failure") if b.attrs["data-category"] == FAILING)
    strip = block.all("div", "flip-strip")[0]
    gallery = sections(doc)[FAILING].all("div", "flips")[0]
    assert strip.attrs["data-flips"] == gallery.attrs["data-flips"]
    ids = {n.attrs["id"] for n in doc.walk() if "id" in n.attrs}
    figures = strip.all("figure", "strip")
    assert 0 < len(figures) <= 8 and all(f.all("img") for f in figures)
    for figure in figures:
        (link,) = figure.all("figcaption")[0].all("a")
        target = link.attrs["href"][1:]
        assert target in ids and target.endswith(f"-{figure.attrs['data-seed']}")


def test_nothing_is_listed_when_every_check_passes(run: RunResult) -> None:
    green = run.model_copy(deep=True)
    green.tests = [t for t in green.tests if t.verdict == "pass"]
    assert green.tests and not _flagged(green)
    doc = parse(render_html(green, max_per_group=4))
    section = next(n for n in doc.all("section") if n.attrs.get("id") == "failures")
    assert not section.all("div", "failure") and not section.all("tr") and "none" in section.text()
    # nothing fails: the categories are all shown, the details open
    (details,) = doc.all("details")
    assert "open" in details.attrs


def test_categories_fail_first_then_warn_then_pass_in_suite_order(run: RunResult) -> None:
    doc = parse(render_html(_with_warning(run), max_per_group=4))
    passing = [n for n in SUITE_ORDER if n not in (FAILING, WARNED, UNTESTED)]
    assert list(sections(doc)) == [FAILING, WARNED, *passing, UNTESTED]
    contents = [a.text() for a in doc.all("ul", "contents")[0].all("a")]
    assert contents == list(sections(doc))


def test_passing_categories_sit_in_a_closed_details(run: RunResult) -> None:
    doc = parse(render_html(_with_warning(run), max_per_group=4))
    (details,) = doc.all("details")
    assert "open" not in details.attrs and details.all("summary")
    inside = {s.attrs["data-category"] for s in details.all("section", "category")}
    assert inside == set(SUITE_ORDER) - {FAILING, WARNED}
    assert not doc.all("script")


# -- relative paths ------------------------------------------------------------------------------------------


def test_the_baselines_table_has_no_absolute_path(run: RunResult, tmp_path: Path) -> None:
    absolute = run.model_copy(deep=True)
    folder = tmp_path / "project" / "bias_tests" / "baselines"
    absolute.baselines = {str(folder / f"{n}.json"): "compared" for n in CATEGORIES if n != UNTESTED}

    def files(page: str) -> list[str]:
        table = parse(page).all("table", "baselines")[0]
        return [row.all("td")[0].text() for row in table.all("tr")[1:]]

    beside = write_html(absolute, tmp_path / "project" / "report.html", max_per_group=2)
    shown = files(beside.read_text(encoding="utf-8"))
    assert shown == [f"bias_tests/baselines/{n}.json" for n in CATEGORIES if n != UNTESTED]
    elsewhere = write_html(absolute, tmp_path / "elsewhere" / "report.html", max_per_group=2)
    for page in (elsewhere.read_text(encoding="utf-8"), render_html(absolute, max_per_group=2)):
        assert files(page) == [f"baselines/{n}.json" for n in CATEGORIES if n != UNTESTED]
        assert str(tmp_path) not in page and not any(p.startswith("/") for p in files(page))
    assert str(tmp_path) not in beside.read_text(encoding="utf-8")


# -- charts and tables -----------------------------------------------------------------------------------------


def _carded_run(n: int = 400) -> RunResult:
    """A doctor category read by a noisy scorer (women read as men 25% of the time), corrected by its card."""
    rng = np.random.default_rng(11)
    truth = np.array(["female"] * 300 + ["male"] * 300)
    read = np.where((truth == "female") & (rng.random(600) < 0.25), "male", truth)
    card = build_card("noisy", "h" * 16, {"gender": (list(truth), list(read))}, classes={"gender": ["female", "male"]})
    drawn = np.where(rng.random(n) < 0.5, "female", "male")
    labels = np.where((drawn == "female") & (rng.random(n) < 0.25), "male", drawn)
    records = [
        ImageRecord(image_id=f"d{i}", category="doctor", labels={"gender": str(g)}, seed=i)
        for i, g in enumerate(labels)
    ]
    data = category_data(SUITE, "doctor", records, "strict")
    result = measure(SUITE, data, model="m", scorer="noisy", records=records, n_boot=100, card=card)
    assert result.raw_metrics is not None
    return RunResult.from_results([result])


def _bar_shares(svg: str) -> list[float]:
    """The candidate bars' lengths as shares, top bar first, read off the SVG against its 0% and 100% ticks."""
    ticks = {m.group(2): float(m.group(1)) for m in re.finditer(r'x="([\d.]+)"[^>]*>(0%|100%)</text>', svg)}
    scale = ticks["100%"] - ticks["0%"]
    bars = []
    for path in re.finditer(r'<path d="M ([\d.]+) ([\d.]+) \s*L ([\d.]+) [^"]*" clip-path[^>]*fill: ([#\w]+)', svg):
        if path.group(4) == CANDIDATE_COLOUR:
            bars.append((float(path.group(2)), (float(path.group(3)) - float(path.group(1))) / scale))
    return [share for _, share in sorted(bars)]


def test_a_scorer_card_chart_draws_corrected_bars_and_raw_markers() -> None:
    run = _carded_run()
    doctor = run.categories["doctor"]
    corrected, raw = doctor.metrics["representation_parity"], (doctor.raw_metrics or {})["representation_parity"]
    assert isinstance(corrected, dict) and isinstance(raw, dict)
    assert abs(corrected["male"] - raw["male"]) > 0.05  # the card moves the share: raw bars would show
    page = render_html(run)
    section = sections(parse(page))["doctor"]
    start = page.index('<div class="chart">')
    chart = page[start : page.index("</div>", start)]
    groups = [g for g in SUITE.attributes["gender"].groups if g in corrected]
    assert _bar_shares(chart) == pytest.approx([corrected[g] for g in groups], abs=2e-3)  # bars are corrected
    assert "raw (scorer" in section.all("div", "chart")[0].text()  # the raw shares: a labelled marker
    rows = {
        r.all("td")[0].text(): [td.text() for td in r.all("td")]
        for r in section.all("table", "shares")[0].all("tr")[1:]
    }
    interval = doctor.intervals["male_share"]
    assert rows["male"][2] == f"{corrected['male']:.1%} [{interval.low:.1%}, {interval.high:.1%}]"
    assert rows["male"][3] == f"{raw['male']:.1%}"
    # the other group's interval is the complement of the measured one, never the raw one
    assert rows["female"][2] == f"{corrected['female']:.1%} [{1 - interval.high:.1%}, {1 - interval.low:.1%}]"


def test_without_a_card_the_bars_are_the_counted_shares(run: RunResult) -> None:
    view = next(v for v in category_views(run) if v.name == FAILING)
    images = run.categories[FAILING].images
    male = sum(i.labels.get("gender") == "male" for i in images) / sum(
        i.labels.get("gender") in ("male", "female") for i in images
    )
    from pytest_t2ibias.report.html import candidate_shares

    bars = candidate_shares(view)
    assert bars["male"].share == pytest.approx(male) and bars["male"].raw is None


def test_a_reference_share_is_marked() -> None:
    plain = share_chart_svg(
        ["a", "b"], {"a": ShareBar(0.3, 0.2, 0.4), "b": ShareBar(0.7, 0.6, 0.8)}, None, chart_id="c"
    )
    marked = share_chart_svg(
        ["a", "b"],
        {"a": ShareBar(0.3, 0.2, 0.4), "b": ShareBar(0.7, 0.6, 0.8)},
        None,
        chart_id="c",
        reference={"a": 0.5, "b": 0.5},
    )
    assert ">reference</text>" in marked and ">reference</text>" not in plain


def test_one_metric_row_per_metric_naming_its_tests(run: RunResult) -> None:
    doubled = run.model_copy(deep=True)
    original = next(t for t in doubled.tests if t.category == FAILING)
    doubled.tests.append(
        BiasTestResult.from_checks(f"tests/test_bias.py::test_{FAILING}_again", FAILING, list(original.checks))
    )
    doc = parse(render_html(doubled, max_per_group=2))
    table = sections(doc)[FAILING].all("table", "metrics")[0]
    names = [r.all("td")[0].text() for r in table.all("tr")[1:]]
    assert len(names) == len(set(names))
    row = next(r for r in table.all("tr")[1:] if r.all("td")[0].text() == "parity_difference")
    items = [li.text() for li in row.all("li")]
    assert len(items) == 2 * sum(c.metric == "parity_difference" for c in original.checks)
    assert any(f"test_{FAILING})" in i for i in items) and any(f"test_{FAILING}_again)" in i for i in items)


def test_thumbnail_captions_short_seeds_and_drives_on_its_own_line(run: RunResult) -> None:
    big = run.model_copy(deep=True)
    for image in big.categories[FAILING].images:
        assert image.seed is not None
        image.seed += 858792903303000
    doc = parse(render_html(big, max_per_group=4))
    drivers = sections(doc)[FAILING].all("figure", "driver")
    assert drivers
    for figure in drivers:
        caption = figure.all("figcaption")[0]
        seed = caption.all("span", "seed")[0].text()
        assert seed.startswith("seed …") and len(seed) <= len("seed …") + 6
        assert caption.all("span", "drives")[0].text().startswith("drives ")
        assert "858792903303" in figure.all("img")[0].attrs["title"]  # the whole seed in the title
    # the why list links each set of driving images once
    why = sections(doc)[FAILING].all("ul", "why")[0]
    hrefs = [a.attrs["href"] for a in why.all("a")]
    assert len(hrefs) == len(set(hrefs))


def test_a_suite_reference_is_marked_on_its_chart_and_in_the_table() -> None:
    from pytest_t2ibias.results import CategoryResultModel

    suite = load_suite("occupations")
    reference = suite.reference_of("doctor")
    assert reference is not None
    shares = {"female": 0.2, "male": 0.8}
    category = CategoryResultModel(
        suite=suite.name, model="m", mode="strict", n=50, metrics={"representation_parity": shares}
    )
    doc = parse(render_html(RunResult.of({"doctor": category})))
    section = sections(doc)["doctor"]
    table = section.all("table", "shares")[0]
    assert [th.text() for th in table.all("th")][-1] == "reference"
    marked = {r.all("td")[0].text(): r.all("td", "reference")[0].text() for r in table.all("tr")[1:]}
    assert marked == {g: f"{v:.1%}" for g, v in reference.items()}
    assert "reference" in section.all("div", "chart")[0].text()
    # a suite without references: no mark
    plain = CategoryResultModel(
        suite="t2i-biasbench", model="m", mode="strict", n=50, metrics={"representation_parity": shares}
    )
    other = sections(parse(render_html(RunResult.of({"doctor": plain}))))["doctor"]
    assert "reference" not in other.all("div", "chart")[0].text()


def test_a_regression_is_driven_by_its_flipped_seeds(run: RunResult) -> None:
    """For the male-share regression the driving images are the candidate images of the seeds that flipped
    into or out of 'male'; the parity bound keeps the registry's drivers (the most frequent group)."""
    view = next(v for v in category_views(run) if v.name == FAILING)
    flipped = {f.candidate.id for f in view.flips if "male" in (f.before, f.after)}
    what, ids = view.drivers["male_share"]
    assert ids and set(ids) <= flipped and "changed since the baseline" in what
    assert "most frequent" in view.drivers["parity_difference"][0]
    # an image that drives both is linked once, under the first check; the second says so
    parity, regression = view.drivers["parity_difference"][1], view.drivers["male_share"][1]
    shared = set(parity) & set(regression)
    assert shared  # the fixture's first flipped seed is a male image
    why = sections(parse(render_html(run, max_per_group=4)))[FAILING].all("ul", "why")[0]
    hrefs = [a.attrs["href"] for a in why.all("a")]
    assert len(hrefs) == len(set(hrefs)) == len(set(parity) | set(regression))
    assert f"(and {len(shared)} linked above, for parity_difference)" in why.text()


def test_a_failing_aggregate_check_is_listed_too(run: RunResult) -> None:
    with_aggregate = run.model_copy(deep=True)
    check = Check(
        category="aggregate",
        metric="mean_abs_gap",
        kind="bound",
        verdict="fail",
        value=0.3,
        interval=None,
        threshold="<= 0.1",
        note="whole interval above the bound",
    )
    with_aggregate.tests.append(BiasTestResult.from_checks("tests/test_bias.py::test_aggregate", "aggregate", [check]))
    doc = parse(render_html(with_aggregate, max_per_group=2))
    assert _listed(doc) == _flagged(with_aggregate)
    assert ("aggregate", "mean_abs_gap", "fail") in _listed(doc)


def test_user_text_in_the_failures_section_is_escaped(run: RunResult) -> None:
    hostile = "<script>alert('x')</script>"
    bad = run.model_copy(deep=True)
    index = next(i for i, t in enumerate(bad.tests) if t.category == FAILING)
    test = bad.tests[index]
    checks = [Check(**{**vars(c), "metric": hostile, "threshold": hostile, "note": hostile}) for c in test.checks]
    bad.tests[index] = BiasTestResult.from_checks(f"tests/x.py::{hostile}", FAILING, checks, problem=hostile)
    page = render_html(bad, max_per_group=2)
    assert "<script" not in page.lower()
    doc = parse(page)
    section = next(n for n in doc.all("section") if n.attrs.get("id") == "failures")
    assert hostile in section.text() and not doc.all("script")
