"""The HTML report, read back from its text: structure, images, flips, escaping, offline, deterministic.

Runs are real (``tests/report_fixtures.py``): synthetic images on disk, metrics measured, checks judged.
The page is parsed with ``html.parser`` into a small tree; nothing is matched with regular expressions.
"""

from __future__ import annotations

import doctest
import importlib
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest
from report_fixtures import CATEGORIES, FAILING, UNTESTED, build_run

from pytest_t2ibias.report import drivers as drivers_module
from pytest_t2ibias.report import summary as summary_module
from pytest_t2ibias.report.drivers import driving_image_ids
from pytest_t2ibias.report.html import MAX_FLIPS, mask_credentials, render_html, write_html
from pytest_t2ibias.results import ImageResult, RunResult
from pytest_t2ibias.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
#: The fixture's categories in another order than the suite's: the page must put them back.
SHUFFLED = ("nature", "doctor", "animal", "beauty", "culture")
SUITE_ORDER = [name for name in load_suite("t2i-biasbench").categories if name in CATEGORIES]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# -- a tiny DOM ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.attrs.get("class", "").split())
        ]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


def sections(doc: Node) -> dict[str, Node]:
    return {s.attrs["data-category"]: s for s in doc.all("section", "category")}


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return build_run(tmp_path_factory.mktemp("run"), n=60, categories=SHUFFLED)


@pytest.fixture(scope="module")
def page(run: RunResult) -> str:
    return render_html(run, max_per_group=10)


@pytest.fixture(scope="module")
def doc(page: str) -> Node:
    return parse(page)


def _label(run: RunResult, category: str, image: ImageResult) -> str:
    attribute = load_suite("t2i-biasbench").categories[category].attribute
    assert attribute is not None
    return image.labels.get(attribute, "unknown")


def _flipped_seeds(run: RunResult, category: str) -> dict[int, tuple[str, str]]:
    cat = run.categories[category]
    assert cat.baseline is not None
    before = {i.seed: _label(run, category, i) for i in cat.baseline.images if i.seed is not None}
    after = {i.seed: _label(run, category, i) for i in cat.images if i.seed is not None}
    return {s: (before[s], after[s]) for s in sorted(before.keys() & after.keys()) if before[s] != after[s]}


# -- structure ----------------------------------------------------------------------------------------------


def test_one_section_per_category_failing_first_then_suite_order(doc: Node) -> None:
    rank = {FAILING: 0, UNTESTED: 2}  # the rest pass
    expected = sorted(SUITE_ORDER, key=lambda name: rank.get(name, 1))
    assert list(sections(doc)) == expected
    assert expected[0] == FAILING != SUITE_ORDER[0] and list(sections(doc)) != list(SHUFFLED)


def test_verdicts_per_category(doc: Node) -> None:
    found = {name: s.all("h2")[0].text() for name, s in sections(doc).items()}
    assert found[FAILING].endswith("fail")
    assert found[UNTESTED].endswith("not gated")
    assert all(text.endswith("pass") for name, text in found.items() if name not in (FAILING, UNTESTED))
    why = sections(doc)[FAILING].all("ul", "why")[0].text()
    assert "parity_difference" in why and "male_share" in why and "whole interval above the bound" in why


def test_header_shows_the_run(run: RunResult, doc: Node) -> None:
    header = doc.all("header")[0]
    text = header.text()
    assert run.model is not None and run.model in text
    assert "t2i-biasbench" in text and "strict" in text and run.package_version in text
    assert "1 fail, 3 pass" in text and "1 did not run" in text
    assert f"tests/test_bias.py::test_{UNTESTED}" in text and "no approved baseline" in text
    assert "baselines/doctor.json" in text and "4 compared" in text
    scorer = [n for n in header.all("span") if n.attrs.get("title") == run.scorer]
    assert [n.text() for n in scorer] == ["synthetic-mark-reader:v1"]


def test_metric_table_has_every_metric_and_the_checks(run: RunResult, doc: Node) -> None:
    for name, section in sections(doc).items():
        rows = section.all("table", "metrics")[0].all("tr")[1:]
        metrics = [r.all("td")[0].text() for r in rows]
        assert set(run.categories[name].metrics) <= set(metrics)
        assert len(metrics) == len(set(metrics))  # one row per metric
    doctor = sections(doc)[FAILING].all("table", "metrics")[0]
    failed = [r for r in doctor.all("tr") if r.attrs.get("class") == "fail"]
    assert {r.all("td")[0].text() for r in failed} == {"parity_difference", "male_share"}
    regression = next(r for r in failed if r.all("td")[0].text() == "male_share")
    (check,) = regression.all("li")
    assert check.attrs["data-kind"] == "regression" and "test_doctor" in check.text()  # which test made it
    baseline, change, p_value = (check.all("span", cls)[0].text() for cls in ("baseline", "change", "p"))
    assert float(baseline) < float(regression.all("td")[1].text()) and change.startswith("+") and float(p_value) < 0.05


def test_a_share_chart_per_category(doc: Node) -> None:
    for section in sections(doc).values():
        charts = section.all("div", "chart")
        assert len(charts) == 1 and len(charts[0].all("svg")) == 1
        assert "baseline" in charts[0].text() and "candidate" in charts[0].text()


def test_grids_hold_every_group_and_respect_the_cap(run: RunResult, doc: Node) -> None:
    for name, section in sections(doc).items():
        counts = Counter(_label(run, name, i) for i in run.categories[name].images)
        groups = section.all("div", "group")
        assert {g.attrs["data-group"]: int(g.attrs["data-count"]) for g in groups} == dict(counts)
        for group in groups:
            total = int(group.attrs["data-count"])
            thumbs = group.all("figure", "thumb")
            assert len(thumbs) == min(total, 10) == int(group.attrs["data-shown"])
            assert f"(showing {len(thumbs)} of {total})" in group.text()
            seeds = [int(f.all("figcaption")[0].text().split()[1]) for f in thumbs]
            assert seeds == sorted(seeds)  # shown in seed order


def test_the_choice_is_seeded(run: RunResult) -> None:
    def shown(page: str) -> list[str]:
        group = next(g for g in parse(page).all("div", "group") if int(g.attrs["data-count"]) > 5)
        return [f.attrs["id"] for f in group.all("figure", "thumb")]

    assert shown(render_html(run, max_per_group=5, seed=1)) == shown(render_html(run, max_per_group=5, seed=1))
    assert shown(render_html(run, max_per_group=5, seed=1)) != shown(render_html(run, max_per_group=5, seed=2))


def test_failed_checks_link_to_their_highlighted_driving_images(run: RunResult, doc: Node) -> None:
    section = sections(doc)[FAILING]
    by_id = {n.attrs["id"]: n for n in doc.walk() if "id" in n.attrs}
    links = [a.attrs["href"] for a in section.all("ul", "why")[0].all("a")]
    assert links
    spec = load_suite("t2i-biasbench").categories[FAILING]
    _, expected = driving_image_ids(run.categories[FAILING].images, "parity_difference", spec)
    images = run.categories[FAILING].images
    anchors = {image.id: f"img-{SUITE_ORDER.index(FAILING)}-{i}" for i, image in enumerate(images)}
    assert links[: len(expected)] == [f"#{anchors[i]}" for i in expected]
    for href in links:
        target = by_id[href[1:]]
        assert target.tag == "figure" and "driver" in target.attrs["class"].split()
        assert target.all("img")  # the driving image is shown, not just named
    table_links = [a.attrs["href"] for a in section.all("table", "metrics")[0].all("a")]
    assert table_links and set(table_links) <= set(links)


def test_element_ids_are_unique(doc: Node) -> None:
    ids = [n.attrs["id"] for n in doc.walk() if "id" in n.attrs]
    assert len(ids) == len(set(ids))


# -- flips --------------------------------------------------------------------------------------------------


def test_flip_count_is_the_seeds_whose_label_changed(run: RunResult, doc: Node) -> None:
    total = 0
    for name, section in sections(doc).items():
        flipped = _flipped_seeds(run, name)
        total += len(flipped)
        gallery = section.all("div", "flips")
        if not flipped:
            assert not gallery and "No seed present in both runs changed its label" in section.text()
            continue
        assert int(gallery[0].attrs["data-flips"]) == len(flipped)
        pairs = gallery[0].all("div", "flip")
        assert [int(p.attrs["data-seed"]) for p in pairs] == list(flipped)
        for pair in pairs:
            before, after = flipped[int(pair.attrs["data-seed"])]
            assert pair.all("p")[0].text() == f"seed {pair.attrs['data-seed']}: {before} -> {after}"
            assert len(pair.all("img")) == 2
        for (before, after), n in Counter(flipped.values()).items():
            assert f"{before} -> {after}: {n}" in section.all("p", "flip-summary")[0].text()
    assert len(_flipped_seeds(run, FAILING)) > 5 and total > len(_flipped_seeds(run, FAILING))


def test_the_gallery_is_capped_reproducibly(tmp_path: Path) -> None:
    big = build_run(tmp_path, n=400, categories=(FAILING,), redraw=0.0)
    flipped = _flipped_seeds(big, FAILING)
    assert len(flipped) > MAX_FLIPS
    page = render_html(big)
    gallery = sections(parse(page))[FAILING].all("div", "flips")[0]
    seeds = [int(p.attrs["data-seed"]) for p in gallery.all("div", "flip")]
    assert len(seeds) == MAX_FLIPS and seeds == sorted(seeds) and set(seeds) <= set(flipped)
    assert int(gallery.attrs["data-flips"]) == len(flipped)
    summary = sections(parse(page))[FAILING].all("p", "flip-summary")[0].text()
    assert f"female -> male: {len(flipped)}" in summary and f"(showing {MAX_FLIPS} of {len(flipped)})" in summary
    assert render_html(big) == page


def test_a_missing_baseline_image_is_said_and_the_candidate_shown(run: RunResult, tmp_path: Path) -> None:
    broken = run.model_copy(deep=True)
    cat = broken.categories[FAILING]
    assert cat.baseline is not None
    seeds = list(_flipped_seeds(run, FAILING))
    gone = tmp_path / "gone.png"
    for image in cat.baseline.images:
        if image.seed == seeds[0]:
            image.path = None
        elif image.seed == seeds[1]:
            image.path = str(gone)
    doc = parse(render_html(broken))
    pairs = {int(p.attrs["data-seed"]): p for p in sections(doc)[FAILING].all("div", "flip")}
    for seed in seeds[:2]:
        assert "baseline image no longer in the cache" in pairs[seed].text()
        assert len(pairs[seed].all("img")) == 1  # the candidate alone
    assert len(pairs[seeds[2]].all("img")) == 2


def test_missing_or_broken_images_never_crash(run: RunResult, tmp_path: Path) -> None:
    broken = run.model_copy(deep=True)
    images = broken.categories["beauty"].images
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    images[0].path = None
    images[1].path = str(tmp_path / "deleted.png")
    images[2].path = str(corrupt)
    images[3].path = str(tmp_path)  # a folder
    page = render_html(broken, max_per_group=1000)
    missing = [n for n in sections(parse(page))["beauty"].all("div", "missing")]
    assert len(missing) == 4 and all(n.text() == "image not found" for n in missing)


# -- offline, escaped, deterministic ---------------------------------------------------------------------------


def test_every_image_is_embedded_and_nothing_is_fetched(page: str, doc: Node) -> None:
    imgs = doc.all("img")
    assert len(imgs) > 100
    assert all(img.attrs["src"].startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for img in imgs)
    assert "http://" not in page and "https://" not in page
    assert not doc.all("script") and not doc.all("link") and not doc.all("iframe")
    for node in doc.walk():
        for name, value in node.attrs.items():
            if name in ("src", "href", "xlink:href", "action", "poster", "srcset"):
                assert value.startswith(("data:", "#")), (node.tag, name, value[:80])
            assert "//" not in value or value.startswith("data:"), (node.tag, name, value[:80])
    style = "".join(n.text() for n in doc.all("style"))
    assert "url(" not in style and "@import" not in style and "//" not in style


HOSTILE = "<script>alert('x')</script>"


def _hostile(run: RunResult) -> RunResult:
    bad = run.model_copy(deep=True)
    bad.model = "https://user:secret@host.example/model?token=abc"
    bad.scorer = f"s3://key:secret@bucket/clip|{HOSTILE}"
    cat = bad.categories[FAILING]
    image = cat.images[0]
    image.prompt = HOSTILE
    image.caption = '"><img src=x onerror=alert(1)>'
    image.labels["gender"] = HOSTILE  # a label becomes a group: in a grid, the chart and the flips
    image.path = "/tmp/https://user:secret@host/x.png"
    assert cat.baseline is not None
    cat.baseline.model = "hf://user:secret@hub/base"
    bad.not_run[0].reason = HOSTILE
    bad.baselines = {"https://u:secret@host/b.json": HOSTILE}
    bad.tests[1].checks[0] = type(bad.tests[1].checks[0])(**{**vars(bad.tests[1].checks[0]), "note": HOSTILE})
    return bad


def test_user_text_is_escaped_and_credentials_masked(run: RunResult) -> None:
    page = render_html(_hostile(run))
    assert "<script" not in page.lower() and "secret" not in page.lower() and "token=abc" not in page
    doc = parse(page)
    assert not doc.all("script")
    assert all("onerror" not in node.attrs for node in doc.walk())
    assert all(img.attrs["src"].startswith("data:") for img in doc.all("img"))
    assert HOSTILE in doc.text()  # shown as text, not run
    assert "https://***@host.example/model?token=***" in doc.text()


def test_two_renders_are_byte_identical(run: RunResult, page: str, tmp_path: Path) -> None:
    assert render_html(run, max_per_group=10) == page
    written = write_html(run, tmp_path / "report.html", max_per_group=10)
    assert written.read_text(encoding="utf-8") == page


def test_full_images_are_copied_beside_the_page_and_linked(run: RunResult, tmp_path: Path) -> None:
    path = write_html(run, tmp_path / "out" / "report.html", full_images=True, max_per_group=10)
    folder = tmp_path / "out" / "report_images"
    doc = parse(path.read_text(encoding="utf-8"))
    sources = {i.path: i for c in run.categories.values() for i in c.images + (c.baseline.images if c.baseline else [])}
    links = [a for a in doc.all("a") if a.all("img")]
    assert len(links) == len(doc.all("img"))
    copied = set()
    for a in links:
        href = a.attrs["href"]
        assert href.startswith("report_images/") and "//" not in href
        target = path.parent / href
        copied.add(target)
        assert target.is_file()
    assert copied == set(folder.iterdir())
    originals = {Path(p).read_bytes() for p in sources if p}
    assert all(t.read_bytes() in originals for t in copied)
    assert all(img.attrs["src"].startswith("data:") for img in doc.all("img"))


def test_full_images_links_survive_odd_names(run: RunResult, tmp_path: Path) -> None:
    odd = run.model_copy(deep=True)
    cat = odd.categories["animal"]
    weird = tmp_path / "a b#?&<x>.png"
    first = cat.images[0].path
    assert first is not None
    shutil.copyfile(first, weird)
    cat.images[0].path = str(weird)
    path = write_html(odd, tmp_path / "r.html", full_images=True, max_per_group=1000)
    hrefs = [a.attrs["href"] for a in parse(path.read_text(encoding="utf-8")).all("a") if a.all("img")]
    assert all((path.parent / _unquote(h)).is_file() for h in hrefs)


def _unquote(href: str) -> str:
    from urllib.parse import unquote

    return unquote(href)


# -- helpers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://user:secret@host/model", "https://***@host/model"),
        ("s3://key:p@ss@bucket/x", "s3://***@bucket/x"),
        ("hf://token@hub/org/model rev", "hf://***@hub/org/model rev"),
        ("see https://host/a?token=abc&x=1 and http://u:v@h", "see https://host/a?token=***&x=1 and http://***@h"),
        ("no url here: a@b.c", "no url here: a@b.c"),
        ("https://host/path/user@example.com", "https://host/path/user@example.com"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


@pytest.mark.parametrize("module", [summary_module, drivers_module], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def _images(labels: Sequence[str], present: list[list[str]] | None = None) -> list[ImageResult]:
    return [
        ImageResult(id=f"i{n}", seed=n, labels={"gender": g}, present={"explicit": (present or [[]] * 99)[n]})
        for n, g in enumerate(labels)
    ]


def test_driving_images_follow_the_registry() -> None:
    spec = load_suite("t2i-biasbench").categories["doctor"]
    images = _images(
        ["female", "male", "male", "unknown", "male"], [["doctor"], [], ["doctor", "surgeon"], [], ["doctor"]]
    )
    what, ids = driving_image_ids(images, "parity_difference", spec, k=2)
    assert ids == ["i1", "i2"] and "'male' (3 of 5)" in what
    assert driving_image_ids(images, "unknown_rate", spec)[1] == ["i3"]
    assert driving_image_ids(images, "gmr", spec)[1][:2] == ["i1", "i3"]  # fewest explicit terms first
    assert driving_image_ids(images, "hallucination", spec)[1] == []  # most:unexpected, none present
    assert driving_image_ids(images, "male_share", spec)[1] == ["i1", "i2", "i4"]  # a share of the spec
    scores = {"i0": 0.3, "i1": 0.1, "i2": 0.2}
    assert driving_image_ids(images, "clip_score", spec, clip_scores=scores)[1] == ["i1", "i2", "i0"]
    assert driving_image_ids(images, "clip_score", spec)[1] == []
    assert driving_image_ids(images, "distinct_markers", None)[0] == "images with the fewest cultural markers terms"
    assert driving_image_ids(images, "puzzle_ratio", None)[0] == "images with the fewest puzzle terms"
    assert driving_image_ids(images, "parity_difference", None, k=0)[1] == []


def test_driving_images_match_the_assertions(tmp_path: Path) -> None:
    """The report names the images a failing assertion names (by id; the assertion prints paths)."""
    from pytest_t2ibias.assertions import driving_images
    from pytest_t2ibias.generate.synthetic import SyntheticGenerator
    from pytest_t2ibias.metrics.engine import category_data
    from pytest_t2ibias.metrics.result import measure
    from pytest_t2ibias.records import ImageRecord

    suite = load_suite("t2i-biasbench")
    gen = SyntheticGenerator.from_probabilities(suite, {"doctor": {"male": 0.6, "female": 0.3, "unknown": 0.1}})
    records = []
    for seed in range(40):
        truth = gen.draw("doctor", seed)
        records.append(ImageRecord(image_id=f"d{seed}", category="doctor", labels=truth.labels, present=truth.present))
    result = measure(suite, category_data(suite, "doctor", records, "strict"), model="m", scorer="s", records=records)
    images = [ImageResult(id=r.image_id, labels=dict(r.labels), present=dict(r.present)) for r in records]
    for metric_id in ("parity_difference", "gmr", "iemr", "unknown_rate", "hallucination", "male_share"):
        assert driving_image_ids(images, metric_id, suite.categories["doctor"]) == driving_images(result, metric_id)


# -- the benchmark ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_report")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_bench_small_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--n", "30", "--rounds", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("RESULT html_mb=") and " render_s=" in last
    assert 0 < report["html_mb"] < 5


def test_a_run_without_images_or_suite_still_renders(run: RunResult) -> None:
    bare = run.model_copy(deep=True)
    for cat in bare.categories.values():
        cat.images = []
        cat.baseline = None
    doc = parse(render_html(bare))
    doctor = sections(doc)[FAILING]
    assert "keeps no per-image data" in doctor.text() and "No approved baseline" in doctor.text()
    assert len(doctor.all("svg")) == 1  # the shares the run reported
    assert not doc.all("img")
    unknown = run.model_copy(deep=True)
    unknown.suite = "no-such-suite"
    doc = parse(render_html(unknown))
    assert list(sections(doc)) == sorted(SHUFFLED, key=lambda n: {FAILING: 0, UNTESTED: 2}.get(n, 1))  # run order
    groups = {g.attrs["data-group"] for g in sections(doc)[FAILING].all("div", "group")}
    assert groups == {"female", "male"}  # the attribute is the images' first label


@pytest.mark.parametrize(("option", "value"), [("thumb_size", 0), ("max_per_group", -1), ("thumb_size", True)])
def test_bad_options_are_refused(run: RunResult, option: str, value: int) -> None:
    with pytest.raises(ValueError, match=option):
        render_html(run, **{option: value})
