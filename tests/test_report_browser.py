"""The HTML report in a real browser: headless Chromium (Playwright) opens the written file offline.

From the rendered DOM: one section per category, the images per grid and the flip pairs the run implies,
every image decoded, no request to anything but ``data:`` and ``file:`` URLs, no console error.

Needs ``playwright`` (the ``dev`` extra) and a Chromium on the PATH (``chromium``; the system package,
not ``playwright install``). Without them the test skips, except under CI (``CI`` or
``T2IBIAS_REQUIRE_BROWSER`` set), where it fails.
``T2IBIAS_SCREENSHOT=1`` also saves the failing category to ``docs/report-screenshot.png`` and the top of
the report to ``docs/report-top.png``.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import CATEGORIES, FAILING, UNTESTED, build_run

from pytest_t2ibias.report.html import MAX_FLIPS, write_html
from pytest_t2ibias.results import RunResult
from pytest_t2ibias.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"
TOP_SCREENSHOT = ROOT / "docs" / "report-top.png"
CAP = 12
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def _unavailable(reason: str) -> None:
    # .ci/run sets T2IBIAS_REQUIRE_BROWSER (it installs chromium); a CI job sets CI
    if os.environ.get("CI") or os.environ.get("T2IBIAS_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}; CI must run the browser test (install playwright and the system chromium)")
    pytest.skip(reason)


def _chromium() -> str:
    path = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if path is None:
        _unavailable(f"no Chromium on the PATH (looked for {', '.join(CHROMIUM_NAMES)})")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; the dev extra has it)")
    executable = _chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return build_run(tmp_path_factory.mktemp("run"), n=80)


@pytest.fixture(scope="module")
def opened(
    browser: Any, run: RunResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, list[str]]]]:
    path = write_html(run, tmp_path_factory.mktemp("report") / "report.html", max_per_group=CAP)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen: dict[str, list[str]] = {"requests": [], "errors": []}
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.goto(path.resolve().as_uri(), wait_until="load")
    try:
        yield page, seen
    finally:
        page.close()


def _labels(run: RunResult, category: str, images: str = "images") -> dict[int | None, str]:
    attribute = load_suite("t2i-biasbench").categories[category].attribute
    assert attribute is not None
    cat = run.categories[category]
    chosen = cat.images if images == "images" else (cat.baseline.images if cat.baseline else [])
    return {i.seed: i.labels.get(attribute, "unknown") for i in chosen}


def test_one_section_per_category(opened: tuple[Any, dict[str, list[str]]]) -> None:
    page, _ = opened
    names = page.eval_on_selector_all("section.category", "els => els.map(e => e.dataset.category)")
    suite_order = [n for n in load_suite("t2i-biasbench").categories if n in CATEGORIES]
    assert names == [FAILING, *(n for n in suite_order if n not in (FAILING, UNTESTED)), UNTESTED]  # failing first
    assert page.locator(f'section[data-category="{FAILING}"] h2 .badge').inner_text().lower() == "fail"


def test_failures_first_and_a_failures_only_view_without_scripts(
    opened: tuple[Any, dict[str, list[str]]], run: RunResult
) -> None:
    page, _ = opened
    failures, header = page.locator("#failures").bounding_box(), page.locator("header#top").bounding_box()
    assert failures is not None and header is not None and failures["y"] < header["y"]
    rows = page.eval_on_selector_all("#failures tr[data-metric]", "els => els.map(e => e.dataset.metric)")
    flagged = [c.metric for t in run.tests for c in t.checks if c.verdict != "pass"]
    assert sorted(rows) == sorted(flagged) and {"male_share", "parity_difference"} <= set(rows)
    passing = page.locator('details.passing section[data-category="beauty"]')
    assert page.locator(f'section[data-category="{FAILING}"]').is_visible() and not passing.is_visible()
    page.locator("details.passing > summary").click()  # the browser's own toggle: no script on the page
    try:
        assert passing.is_visible()
    finally:
        page.locator("details.passing > summary").click()


def test_report_top_screenshot(opened: tuple[Any, dict[str, list[str]]]) -> None:
    """With ``T2IBIAS_SCREENSHOT=1``: the top of the report (failures first) as ``docs/report-top.png``."""
    if os.environ.get("T2IBIAS_SCREENSHOT") != "1":
        pytest.skip("set T2IBIAS_SCREENSHOT=1 to write docs/report-top.png")
    page, _ = opened
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(TOP_SCREENSHOT), clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    assert TOP_SCREENSHOT.stat().st_size > 0


def test_grids_and_flip_pairs(opened: tuple[Any, dict[str, list[str]]], run: RunResult) -> None:
    page, _ = opened
    for name in CATEGORIES:
        section = page.locator(f'section[data-category="{name}"]')
        counts = Counter(_labels(run, name).values())
        for group, total in counts.items():
            grid = section.locator(f'div.group[data-group="{group}"]')
            assert grid.locator("figure.thumb img").count() == min(total, CAP), (name, group)
        before, after = _labels(run, name, "baseline"), _labels(run, name)
        flipped = [s for s in before if s in after and before[s] != after[s]]
        assert section.locator("div.flip").count() == min(len(flipped), MAX_FLIPS), name
        assert section.locator("div.flip img").count() == 2 * min(len(flipped), MAX_FLIPS), name


def test_every_image_decodes(opened: tuple[Any, dict[str, list[str]]]) -> None:
    page, _ = opened
    sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
    assert len(sizes) > 100
    assert all(complete and width > 0 for complete, width in sizes)


def test_no_network_and_no_console_errors(opened: tuple[Any, dict[str, list[str]]]) -> None:
    page, seen = opened
    page.wait_for_load_state("networkidle")
    assert seen["requests"], "the browser reported no request at all: the recorder is not working"
    assert [u for u in seen["requests"] if not u.startswith(("data:", "file:"))] == []
    assert seen["errors"] == []


def test_failing_category_screenshot(opened: tuple[Any, dict[str, list[str]]]) -> None:
    """With ``T2IBIAS_SCREENSHOT=1``: the failing category's top (verdict, why, metrics, chart, first grid)
    as ``docs/report-screenshot.png``, for docs/report.md."""
    if os.environ.get("T2IBIAS_SCREENSHOT") != "1":
        pytest.skip("set T2IBIAS_SCREENSHOT=1 to write docs/report-screenshot.png")
    page, _ = opened
    page.evaluate("window.scrollTo(0, 0)")  # bounding boxes are relative to the viewport; the clip to the page
    box = page.locator(f'section[data-category="{FAILING}"]').bounding_box()
    assert box is not None
    clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": min(box["height"], 1500)}
    page.screenshot(path=str(SCREENSHOT), clip=clip, full_page=True)
    assert SCREENSHOT.stat().st_size > 0
