"""The HTML report: one self-contained page per run, readable offline from a CI artifact.

First what failed: each failing or inconclusive check (category, metric, baseline -> candidate, allowed
change, the test that made it) with a strip of the category's flips; then the run's metadata (baseline
files shown relative to the page's folder, never as a runner's absolute path). Then per category, failing
first, then warnings, then the rest (suite order within each; those without a failure or warning inside a
``<details>``, so the page opens as a failures-only view without any script): its verdict and why, the
metric table (one row per metric, its checks and their tests listed in it), a chart of the group shares of
the attribute under test (baseline beside candidate, with intervals; under a scorer card the corrected
shares with the raw ones as markers; the suite's reference shares as ticks), the images grouped by label
and the flip gallery (seeds whose label changed since the baseline). Images are embedded as small thumbnails
(``data:`` URIs); nothing in the page makes a network request. Every piece of user text is escaped and
credentials in URLs are masked before they reach the page.

The output is a pure function of the run and the image files: two renders are byte-identical.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
from PIL import Image

from pytest_t2ibias._io import write_text_atomic
from pytest_t2ibias.judge.verdicts import Check, worst_of
from pytest_t2ibias.metrics.intervals import Interval, exact_interval
from pytest_t2ibias.metrics.registry import distribution_metric
from pytest_t2ibias.report.charts import ShareBar, share_chart_svg
from pytest_t2ibias.report.drivers import UNKNOWN, attribute_under_test, driving_image_ids
from pytest_t2ibias.report.summary import NOT_GATED, mask_credentials, short_scorer
from pytest_t2ibias.results import category_verdict
from pytest_t2ibias.suites import SuiteError, load_suite

if TYPE_CHECKING:
    from pytest_t2ibias.results import CategoryResultModel, ImageResult, RunResult
    from pytest_t2ibias.suites.schema import Category, Suite

__all__ = ["MAX_FLIPS", "mask_credentials", "render_html", "write_html"]

#: Most flip pairs a category's gallery shows (the counts always cover every flip).
MAX_FLIPS = 48
#: Flip pairs are drawn at this fraction of the thumbnail size: a pair is as wide as 1.5 thumbnails, and
#: a full gallery of photos stays small (the page is under 5 MB for 5 categories of 200 photos).
FLIP_SCALE = 0.75
#: Driving images named per failed check.
DRIVERS_SHOWN = 5
#: Flipped seeds in a category's strip at the top of the page (its gallery shows up to MAX_FLIPS).
STRIP_FLIPS = 8
#: Longest seed a caption shows whole.
SEED_DIGITS = 8
JPEG_QUALITY = 80
#: An image with at most this many colours (a synthetic mark, a chart) is stored as a palette PNG.
PALETTE_COLOURS = 256
NOT_TESTED = "not gated"  # no check judged the category: no test of it ran, or none called a helper
#: The group name of a category without an attribute under test.
ALL_IMAGES = "all images"

_SLUG = re.compile(r"[^a-z0-9]+")
_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _esc(text: object) -> str:
    """User text as HTML: credentials masked, then escaped (quotes too, so it is safe in attributes)."""
    return html.escape(mask_credentials(str(text)), quote=True)


# -- images ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thumb:
    """An embedded thumbnail: its ``data:`` URI and pixel size."""

    src: str
    width: int
    height: int


def encode_thumbnail(path: Path, size: int) -> Thumb:
    """The image at ``path`` with its longest side at most ``size``: a palette PNG when it has few colours
    (flat synthetic images stay exact and tiny), else a JPEG."""
    with Image.open(path) as opened:
        opened.draft("RGB", (size, size))  # a JPEG decodes at a reduced scale: much faster for photos
        image = _as_rgb(opened)
    colours = image.getcolors(PALETTE_COLOURS)
    # Nearest keeps a flat image's colours exact; a photo deserves the smooth filter.
    image.thumbnail((size, size), Image.Resampling.NEAREST if colours else Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if colours is not None:
        _save_flat(image, buffer)
        kind = "png"
    else:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        kind = "jpeg"
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Thumb(f"data:image/{kind};base64,{data}", image.width, image.height)


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _save_flat(image: Image.Image, buffer: io.BytesIO) -> None:
    """A palette PNG with exactly the image's colours (Pillow's adaptive palette is a quantizer: it may
    merge colours, and a synthetic mark must stay exact)."""
    pixels = np.asarray(image, dtype=np.uint32)
    keys = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    colours, index = np.unique(keys, return_inverse=True)
    palette = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(np.uint8)
    indexed = Image.frombytes("P", image.size, index.astype(np.uint8).tobytes())
    indexed.putpalette(palette.tobytes())
    indexed.save(buffer, format="PNG", optimize=True)


class ImageStore:
    """Thumbnails (each file encoded once) and, with a folder, full copies the thumbnails link to."""

    def __init__(self, thumb_size: int, folder: Path | None = None) -> None:
        self.thumb_size = thumb_size
        self.folder = folder
        self._thumbs: dict[tuple[str, int], Thumb | None] = {}
        self._links: dict[str, str] = {}
        self._names: set[str] = set()

    def thumb(self, path: str | None, size: int | None = None) -> Thumb | None:
        """The thumbnail of ``path`` (longest side ``size``, default ``thumb_size``); None when there is no
        path or the file is missing or unreadable."""
        if path is None:
            return None
        key = (path, size or self.thumb_size)
        if key not in self._thumbs:
            self._thumbs[key] = self._encode(Path(path), key[1])
        return self._thumbs[key]

    def _encode(self, path: Path, size: int) -> Thumb | None:
        if not path.is_file():
            return None
        try:
            return encode_thumbnail(path, size)
        except Exception:  # a broken or exotic image file must cost its thumbnail, never the report
            return None

    def link(self, path: str) -> str | None:
        """The relative link to a full copy of ``path`` beside the page (copied on first use)."""
        if self.folder is None:
            return None
        if path not in self._links:
            name = self._free_name(Path(path).name)
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, self.folder / name)
            except OSError:  # the thumbnail still shows; only the link to the full image is lost
                return None
            self._links[path] = quote(f"{self.folder.name}/{name}")
        return self._links[path]

    def _free_name(self, name: str) -> str:
        stem, dot, suffix = (_FILE_NAME.sub("_", name) or "image").rpartition(".")
        base, ext = (stem, f".{suffix}") if dot and stem else (suffix, "")
        candidate, n = f"{base}{ext}", 1
        while candidate.lower() in self._names:  # two sources with one name (or differing in case only)
            n += 1
            candidate = f"{base}-{n}{ext}"
        self._names.add(candidate.lower())
        return candidate


# -- what a category shows ---------------------------------------------------------------------------------


@dataclass
class CategoryView:
    """One category, resolved: its spec, attribute, groups, checks and the images that drive failures."""

    index: int
    name: str
    result: CategoryResultModel
    spec: Category | None
    attribute: str | None
    declared: list[str]
    groups: list[str]
    verdict: str
    checks: list[Check]
    anchors: dict[str, str] = field(default_factory=dict)
    drivers: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: (test node id, check) of every check, for saying which test made it
    tested: list[tuple[str, Check]] = field(default_factory=list)
    #: (test node id, why) of each test that could not compare with its baseline
    problems: list[tuple[str, str]] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)
    #: the suite's reference shares of the attribute under test (labour statistics, parity), if declared
    reference: dict[str, float] | None = None

    @property
    def rank(self) -> int:
        """Failing first, then warnings, passes, and the categories no check judged."""
        return {"fail": 0, "warn": 1, "pass": 2}.get(self.verdict, 3)

    @property
    def flagged(self) -> list[Check]:
        """The checks that fail or warn, failures first."""
        return sorted((c for c in self.checks if c.verdict != "pass"), key=lambda c: c.verdict != "fail")

    @property
    def section_id(self) -> str:
        slug = _SLUG.sub("-", self.name.lower()).strip("-")
        return f"cat-{self.index}" + (f"-{slug}" if slug else "")

    def label(self, image: ImageResult) -> str:
        if self.attribute is None:
            return ALL_IMAGES
        return image.labels.get(self.attribute, UNKNOWN)

    def driven(self) -> dict[str, list[str]]:
        """Image id -> the failed metrics it drives."""
        out: dict[str, list[str]] = {}
        for metric_id, (_, ids) in self.drivers.items():
            for image_id in ids:
                out.setdefault(image_id, []).append(metric_id)
        return out


def _load_suite(name: str | None) -> Suite | None:
    if not name:
        return None
    try:
        return load_suite(name)
    except (SuiteError, OSError, ValueError):  # a results file outlives its suite: show what it holds
        return None


def category_views(run: RunResult) -> list[CategoryView]:
    """Every category of the run, in suite order (then the rest in run order), resolved."""
    suite = _load_suite(run.suite or next((c.suite for c in run.categories.values()), None))
    order = [n for n in (suite.categories if suite else {}) if n in run.categories]
    order += [n for n in run.categories if n not in order]
    return [_view(i, name, run, suite) for i, name in enumerate(order)]


def _view(index: int, name: str, run: RunResult, suite: Suite | None) -> CategoryView:
    result = run.categories[name]
    spec = suite.categories.get(name) if suite is not None else None
    attribute = attribute_under_test(result.images, spec)
    tests = [t for t in run.tests if t.category == name]
    verdict = category_verdict(tests).verdict
    view = CategoryView(
        index=index,
        name=name,
        result=result,
        spec=spec,
        attribute=attribute,
        declared=list(suite.attributes[attribute].groups) if suite and attribute in suite.attributes else [],
        groups=[],
        verdict=verdict,
        checks=[c for t in tests for c in t.checks],
        tested=[(t.nodeid, c) for t in tests for c in t.checks],
        problems=[(t.nodeid, t.problem) for t in tests if t.problem],
    )
    view.groups = _groups(view)
    view.anchors = {image.id: f"img-{index}-{i}" for i, image in reversed(list(enumerate(result.images)))}
    view.flips = flips(view)
    if suite is not None and spec is not None:
        try:
            view.reference = suite.reference_of(name) or (dict(spec.reference) if spec.reference else None)
        except (KeyError, ValueError):  # a reference the suite cannot resolve: no mark, never a crash
            view.reference = None
    for check in view.checks:
        if check.verdict == "fail" and check.metric not in view.drivers:
            drivers = _regression_drivers(view, check.metric) if check.kind == "regression" else None
            view.drivers[check.metric] = drivers or driving_image_ids(result.images, check.metric, spec, DRIVERS_SHOWN)
    return view


def _share_group(view: CategoryView, metric_id: str) -> str | None:
    """The group whose share ``metric_id`` is (the suite's ``shares``, or ``<group>_share``), if any."""
    shares = dict(view.spec.shares) if view.spec is not None else {}
    if isinstance(shares.get(metric_id), str):  # a share of one group (several: no one group to show)
        return shares[metric_id]  # type: ignore[return-value]
    if metric_id.endswith("_share") and metric_id[: -len("_share")] in view.groups:
        return metric_id[: -len("_share")]
    return None


def _regression_drivers(view: CategoryView, metric_id: str) -> tuple[str, list[str]] | None:
    """For a regression, the images that drive it are the flipped seeds (into or out of the metric's group
    when it is a group's share): their candidate images. None when the run has no flips to show."""
    group = _share_group(view, metric_id)
    chosen = [f for f in view.flips if group is None or group in (f.before, f.after)]
    if not chosen:
        return None
    where = f" into or out of {group!r}" if group is not None else ""
    what = f"seeds whose {view.attribute} label changed since the baseline{where} ({len(chosen)})"
    return what, [f.candidate.id for f in chosen[:DRIVERS_SHOWN]]


def _groups(view: CategoryView) -> list[str]:
    """Declared groups first (in declared order), then any other label seen, sorted."""
    declared = view.declared
    seen = {view.label(image) for image in view.result.images}
    if view.result.baseline is not None:
        seen |= {view.label(image) for image in view.result.baseline.images}
    return declared + sorted(seen - set(declared))


# -- group shares --------------------------------------------------------------------------------------------


def group_shares(view: CategoryView, images: Sequence[ImageResult]) -> dict[str, ShareBar]:
    """Each group's share among ``images`` with its exact interval. Strict mode counts the declared groups
    only (unknown labels leave the denominator, as the share metrics do); paper mode counts every image."""
    counts = Counter(view.label(image) for image in images)
    strict = view.result.mode == "strict" and bool(view.declared)
    groups = view.declared if strict else view.groups
    total = sum(counts[g] for g in groups) if strict else len(images)
    if total == 0:
        return {}
    return {g: _bar(counts[g], total) for g in groups}


def _bar(count: int, total: int) -> ShareBar:
    interval = exact_interval(count, total)
    return ShareBar(count / total, interval.low, interval.high)


def candidate_shares(view: CategoryView) -> dict[str, ShareBar]:
    """The candidate's shares; a group whose share the run measured as a metric keeps that interval. A
    result without per-image data falls back on its group shares metric (the registry's distribution metric,
    ``representation_parity``; intervals where measured).

    With a scorer card the bars are the corrected shares with their corrected intervals, and each bar's
    ``raw`` is the share of the scorer's own labels (never a raw bar beside a corrected interval)."""
    bars = group_shares(view, view.result.images) if view.result.images else _reported_shares(view)
    if view.result.raw_metrics is not None:
        return _corrected_shares(view, bars)
    for group, bar in bars.items():
        measured = _measured_interval(view, group, view.result.intervals)
        if measured is not None:
            bars[group] = ShareBar(bar.share, min(measured.low, bar.share), max(measured.high, bar.share))
    return bars


def _corrected_shares(view: CategoryView, raw_bars: dict[str, ShareBar]) -> dict[str, ShareBar]:
    result = view.result
    shares_id = distribution_metric() or ""
    parity = result.metrics.get(shares_id)
    corrected = dict(parity) if isinstance(parity, dict) else {}
    raw_parity = (result.raw_metrics or {}).get(shares_id)
    raw_shares = dict(raw_parity) if isinstance(raw_parity, dict) else {}
    intervals: dict[str, Interval] = {}
    for group in corrected:
        measured = _measured_interval(view, group, result.intervals)
        if measured is not None:
            intervals[group] = measured
    if len(corrected) == 2 and len(intervals) == 1:  # two groups: one's interval is the other's complement
        interval = next(iter(intervals.values()))
        other = next(g for g in corrected if g not in intervals)
        intervals[other] = Interval(
            low=1 - interval.high, high=1 - interval.low, method=interval.method, confidence=interval.confidence
        )
    out: dict[str, ShareBar] = {}
    for group in [*raw_bars, *(g for g in corrected if g not in raw_bars)]:
        raw = raw_shares.get(group, raw_bars[group].share if group in raw_bars else None)
        value = corrected.get(group)
        if value is None:  # a group the correction does not cover: shown uncorrected, its raw share the same
            bar = raw_bars.get(group)
            if bar is not None:
                out[group] = ShareBar(bar.share, bar.low, bar.high, raw=bar.share)
            continue
        measured = intervals.get(group)
        low = value if measured is None else min(measured.low, value)
        high = value if measured is None else max(measured.high, value)
        out[group] = ShareBar(value, low, high, raw=raw)
    return out


def _measured_interval(view: CategoryView, group: str, intervals: dict[str, Interval]) -> Interval | None:
    share_ids = dict(view.spec.shares) if view.spec is not None else {}
    ids = [m for m, g in share_ids.items() if g == group] + [f"{group}_share"]  # one-group shares only
    return next((intervals[m] for m in ids if m in intervals), None)


def _reported_shares(view: CategoryView) -> dict[str, ShareBar]:
    reported = view.result.metrics.get(distribution_metric() or "")
    if not isinstance(reported, dict):
        return {}
    order = [g for g in view.groups if g in reported] + [g for g in reported if g not in view.groups]
    return {g: ShareBar(reported[g], reported[g], reported[g]) for g in order}


# -- sampling ----------------------------------------------------------------------------------------------


def sample_ids(ids: Sequence[str], cap: int, seed: int, first: Sequence[str] = ()) -> list[str]:
    """Up to ``cap`` of ``ids``: those in ``first`` (the driving images), then a seeded random choice over
    the ids in sorted order; the same inputs give the same choice on any machine."""
    fixed = sorted(ids)
    if len(fixed) <= cap:
        return fixed
    present = set(fixed)
    chosen = [i for i in dict.fromkeys(first) if i in present][: max(cap, 0)]
    taken = set(chosen)
    for j in np.random.default_rng(seed).permutation(len(fixed)):
        if len(chosen) >= cap:
            break
        if fixed[j] not in taken:
            chosen.append(fixed[j])
            taken.add(fixed[j])
    return chosen


def _seed_order(images: Iterable[ImageResult]) -> list[ImageResult]:
    return sorted(images, key=lambda image: (image.seed is None, image.seed or 0, image.id))


@dataclass(frozen=True)
class Flip:
    """A seed whose label of the attribute under test changed since the baseline."""

    seed: int
    before: str
    after: str
    baseline: ImageResult
    candidate: ImageResult


def flips(view: CategoryView) -> list[Flip]:
    """Every flip, in seed order (the first image of a seed pairs when a seed repeats)."""
    if view.result.baseline is None or view.attribute is None:
        return []
    before = _by_seed(view.result.baseline.images)
    after = _by_seed(view.result.images)
    out = []
    for seed in sorted(before.keys() & after.keys()):
        old, new = view.label(before[seed]), view.label(after[seed])
        if old != new:
            out.append(Flip(seed, old, new, before[seed], after[seed]))
    return out


def _by_seed(images: Sequence[ImageResult]) -> dict[int, ImageResult]:
    out: dict[int, ImageResult] = {}
    for image in images:
        if image.seed is not None:
            out.setdefault(image.seed, image)
    return out


def shown_flips(all_flips: Sequence[Flip], cap: int, seed: int) -> list[Flip]:
    if len(all_flips) <= cap:
        return list(all_flips)
    picked = np.random.default_rng(seed).choice(len(all_flips), size=cap, replace=False)
    return [all_flips[i] for i in sorted(int(j) for j in picked)]


# -- formatting --------------------------------------------------------------------------------------------


def _num(value: float | None, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if math.isfinite(value) else str(value)


def _interval(interval: Interval | None) -> str:
    return "-" if interval is None else f"[{_num(interval.low)}, {_num(interval.high)}]"


def _value(value: float | dict[str, float] | None, reason: str | None = None) -> str:
    if isinstance(value, dict):
        return _esc(", ".join(f"{g} {_num(p, '.3f')}" for g, p in value.items()))
    if value is None:
        why = f' <span class="note">({_esc(reason)})</span>' if reason else ""
        return f'<span class="null">null</span>{why}'
    return _num(value)


def _badge(verdict: str) -> str:
    css = _SLUG.sub("-", verdict.lower())
    return f'<span class="badge v-{css}">{_esc(verdict)}</span>'


# -- the page ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    thumb_size: int
    max_per_group: int
    seed: int
    #: the folder the page is written to: baseline paths under it are shown relative to it
    base: Path | None = None


def render_html(run: RunResult, *, thumb_size: int = 128, max_per_group: int = 24, seed: int = 0) -> str:
    """The report of ``run`` as one self-contained HTML page (thumbnails embedded, no network requests).

    ``thumb_size``: the longest side of a thumbnail in pixels (smaller images are not enlarged, only shown
    larger); ``max_per_group``: the most thumbnails a label's grid shows, chosen with ``seed``.
    """
    _check_options(thumb_size, max_per_group)
    return _render(run, _Options(thumb_size, max_per_group, seed), ImageStore(thumb_size))


def write_html(
    run: RunResult,
    path: str | Path,
    *,
    full_images: bool = False,
    thumb_size: int = 128,
    max_per_group: int = 24,
) -> Path:
    """Write the report to ``path``; with ``full_images`` the images shown are also copied, full size, into
    ``<stem>_images/`` beside it and the thumbnails link there. Returns the path written."""
    _check_options(thumb_size, max_per_group)
    path = Path(path)
    folder = path.parent / f"{path.stem}_images" if full_images else None
    options = _Options(thumb_size, max_per_group, 0, path.parent)
    page = _render(run, options, ImageStore(thumb_size, folder))
    # atomic: a CI step that uploads the report never picks up half a page
    write_text_atomic(path, page, durable=False)
    return path


def _check_options(thumb_size: int, max_per_group: int) -> None:
    if isinstance(thumb_size, bool) or not isinstance(thumb_size, int) or thumb_size < 1:
        raise ValueError(f"`thumb_size` must be an integer >= 1, got {thumb_size!r}")
    if isinstance(max_per_group, bool) or not isinstance(max_per_group, int) or max_per_group < 0:
        raise ValueError(f"`max_per_group` must be an integer >= 0, got {max_per_group!r}")


def _render(run: RunResult, options: _Options, store: ImageStore) -> str:
    views = sorted(category_views(run), key=lambda v: v.rank)  # failing first; suite order within each
    body = [
        "<h1>t2ibias bias report</h1>",
        _failures(run, views, options, store),
        _header(run, views, options),
        _aggregates(run),
    ]
    flagged = [view for view in views if view.rank < 2]
    rest = [view for view in views if view.rank >= 2]
    body += [_category(view, options, store) for view in flagged]
    if rest:
        verdicts = Counter(view.verdict for view in rest)
        what = ", ".join(f"{n} {v}" for v, n in verdicts.items())
        # a failures-only view without scripts: closed, the page shows what fails or warns; open, everything
        body.append(
            f'<details class="passing"{"" if flagged else " open"}><summary>'
            f"{len(rest)} categor{'y' if len(rest) == 1 else 'ies'} without a failure or warning ({_esc(what)}): "
            "show</summary>"
        )
        body += [_category(view, options, store) for view in rest]
        body.append("</details>")
    title = f"t2ibias report: {run.suite or 'run'}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # The page must never reach out: forbid every load but inline styles and data: images.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{_esc(title)}</title>\n<style>{_css(options.thumb_size)}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _css(size: int) -> str:
    flip = _flip_size(size)
    return (
        "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:0 auto;"
        "max-width:1280px;padding:0 16px 48px}"
        "h1{font-size:22px;margin:16px 0 8px}h2{font-size:19px;margin:0 0 8px}h3{font-size:15px;margin:16px 0 6px}"
        "section.category{border-top:3px solid #ccc;margin-top:28px;padding-top:12px}"
        "section.v-fail{border-top-color:#c62828}section.v-warn{border-top-color:#b26a00}"
        "section.v-pass{border-top-color:#2e7d32}"
        ".badge{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-weight:600;font-size:12px;"
        "text-transform:uppercase;vertical-align:middle}"
        ".v-pass.badge{background:#2e7d32}.v-warn.badge{background:#b26a00}.v-fail.badge{background:#c62828}"
        ".v-not-gated.badge{background:#757575}.v-inconclusive.badge{background:#b26a00}"
        "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dl.meta dt{color:#666}"
        "dl.meta dd{margin:0}"
        "table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:2px 8px;text-align:left;"
        "border-bottom:1px solid #e3e3e3;vertical-align:top}th{background:#f5f5f5}"
        "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
        "tr.fail td{background:#fdecea}tr.warn td{background:#fff6e0}"
        "ul.checks{margin:0;padding-left:14px}ul.checks li{margin:1px 0}"
        "h4{font-size:14px;margin:12px 0 4px}ul.why li{margin:2px 0}.note{color:#555}.null{color:#999}"
        ".chart svg{max-width:100%;height:auto}"
        ".grid{display:flex;flex-wrap:wrap;gap:6px}"
        f"figure{{margin:0;width:{size}px}}figure img{{display:block;background:#f0f0f0}}"
        "figure img.up{image-rendering:pixelated}"
        "figcaption{font-size:11px;color:#555;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
        "figcaption .drives{display:block;white-space:normal;color:#c62828}"
        "section.failures{border:2px solid #c62828;border-radius:4px;padding:4px 12px 8px;margin:8px 0 16px}"
        "section.failures.none{border-color:#2e7d32}.failure h3 a{color:inherit}"
        ".flip-strip{display:flex;flex-wrap:wrap;gap:6px}"
        f"figure.strip{{width:{flip}px}}figure.strip figcaption{{white-space:normal}}"
        "details.passing{margin-top:28px}details.passing>summary{cursor:pointer;font-size:16px;font-weight:600}"
        ".driver{outline:3px solid #c62828;outline-offset:1px}.driver:target{outline-color:#ff6f00;"
        "box-shadow:0 0 0 6px #ffe0b2}"
        f".missing{{width:{size}px;height:{size}px;display:flex;align-items:center;justify-content:center;"
        "background:#eee;color:#777;font-size:11px;text-align:center;box-sizing:border-box;padding:4px}"
        ".flips{display:flex;flex-wrap:wrap;gap:12px}.flip{border:1px solid #ddd;padding:4px;border-radius:4px}"
        ".pair{display:flex;gap:4px}.flip p{margin:2px 0 0;font-size:12px}"
        f".flip figure{{width:{flip}px}}.flip .missing{{width:{flip}px;height:{flip}px}}"
    )


def _header(run: RunResult, views: Sequence[CategoryView], options: _Options) -> str:
    counts = Counter(t.verdict for t in run.tests)
    tested = ", ".join(f"{counts[v]} {v}" for v in ("fail", "warn", "pass") if counts[v]) or "none"
    scorer = run.scorer or next((c.scorer for c in run.categories.values() if c.scorer), None)
    scorer_html = f'<span title="{_esc(scorer)}">{_esc(short_scorer(scorer))}</span>' if scorer else "-"
    rows = [
        ("suite", _esc(run.suite or "-")),
        ("model", _esc(run.model or "-")),
        ("scorer", scorer_html),
        ("mode", _esc(run.mode or "-")),
        ("package", f"pytest-t2ibias {_esc(run.package_version)}"),
        ("tests", f"{len(run.tests)} ({tested}); {len(run.not_run)} did not run"),
    ]
    parts = [
        '<header id="top">',
        "<h2>Run</h2>",
        '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>",
        _contents(views),
        _not_run(run),
        _baseline_events(run, options.base),
        _unmatched(run),
        "</header>",
    ]
    return "\n".join(p for p in parts if p)


@dataclass
class _Flagged:
    """A block of the failures-first section: one category (or the aggregates) and its flagged checks."""

    name: str
    anchor: str
    verdict: str
    rows: list[tuple[str, Check]]
    problems: list[tuple[str, str]]
    intervals: dict[str, Interval]
    strip: str = ""


def _failures(run: RunResult, views: Sequence[CategoryView], options: _Options, store: ImageStore) -> str:
    """What failed, first: each failing or inconclusive check with its category, metric, baseline ->
    candidate and allowed change, and per category a strip of its flips."""
    blocks = [
        _Flagged(
            view.name,
            view.section_id,
            view.verdict,
            _flagged_tested(view.tested),
            view.problems,
            view.result.intervals,
            _flip_strip(view, options, store),
        )
        for view in views
        if view.flagged or view.problems
    ]
    shown = {view.name for view in views}
    for test in run.tests:  # tests of no category of the run: the aggregates
        tested = _flagged_tested([(test.nodeid, c) for c in test.checks])
        if test.category in shown or not (tested or test.problem):
            continue
        anchor = "aggregates" if run.aggregates is not None else "top"
        block = next((b for b in blocks if b.name == test.category and b.anchor == anchor), None)
        if block is None:
            block = _Flagged(test.category, anchor, test.verdict, [], [], {})
            blocks.append(block)
        block.verdict = worst_of([block.verdict, test.verdict])
        block.rows += tested
        block.problems += [(test.nodeid, test.problem)] if test.problem else []
    if not blocks:
        judged = sum(1 for view in views if view.verdict != NOT_TESTED)
        return (
            '<section id="failures" class="failures none"><h2>Failures and warnings: none</h2>'
            f'<p class="note">No check of the {judged} judged categor{"y" if judged == 1 else "ies"} failed '
            "or warned.</p></section>"
        )
    checks = sum(len(block.rows) + len(block.problems) for block in blocks)
    parts = [
        '<section id="failures" class="failures">',
        f"<h2>Failures and warnings: {checks} check{'s' if checks != 1 else ''} in {len(blocks)} "
        f"categor{'y' if len(blocks) == 1 else 'ies'}</h2>",
    ]
    head = "".join(
        f"<th>{h}</th>" for h in ("verdict", "metric", "check", "baseline -&gt; candidate", "allowed change", "test")
    )
    for block in blocks:
        rows = [_failure_row(block, nodeid, check) for nodeid, check in block.rows]
        rows += [
            f'<tr class="fail" data-metric=""><td>{_badge("fail")}</td><td>-</td><td>baseline</td>'
            f'<td colspan="2">{_esc(why)}</td><td><code>{_esc(nodeid)}</code></td></tr>'
            for nodeid, why in block.problems
        ]
        parts.append(
            f'<div class="failure" data-category="{_esc(block.name)}">'
            f'<h3><a href="#{block.anchor}">{_esc(block.name)}</a> {_badge(block.verdict)}</h3>'
            f'<table class="failures"><tr>{head}</tr>{"".join(rows)}</table>{block.strip}</div>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _flagged_tested(tested: Sequence[tuple[str, Check]]) -> list[tuple[str, Check]]:
    return sorted(((n, c) for n, c in tested if c.verdict != "pass"), key=lambda nc: nc[1].verdict != "fail")


def _failure_row(block: _Flagged, nodeid: str, check: Check) -> str:
    label = _verdict_label(check)
    value = "null" if check.value is None else _num(check.value)
    moved = f"{_num(check.baseline)} -&gt; {value}" if check.baseline is not None else value
    interval = check.interval or block.intervals.get(check.metric)
    moved += f' <span class="note">{_interval(interval)}</span>' if interval is not None else ""
    if check.delta is not None:
        moved += f' <span class="note">(change {_num(check.delta, "+.4f")})</span>'
    allowed = _num(check.allowed, "+.4f") if check.allowed is not None else _esc(check.threshold)
    return (
        f'<tr class="{check.verdict}" data-metric="{_esc(check.metric)}"><td>{_badge(label)}</td>'
        f'<td><a href="#{block.anchor}">{_esc(check.metric)}</a></td>'
        f'<td>{_esc(check.kind)} <span class="note" title="{_esc(check.note)}">{_esc(check.threshold)}</span></td>'
        f'<td class="num">{moved}</td><td class="num">{allowed}</td><td><code>{_esc(nodeid)}</code></td></tr>'
    )


def _verdict_label(check: Check) -> str:
    if check.verdict == "fail":
        return "FAIL"
    return "INCONCLUSIVE" if "inconclusive" in check.note else "WARN"


def _flip_strip(view: CategoryView, options: _Options, store: ImageStore) -> str:
    """The first flipped seeds shown in the category's gallery, as small candidate thumbnails linking there."""
    if view.result.baseline is None or view.attribute is None:
        return ""
    if not view.flips:
        return '<p class="note flip-strip">No seed changed its label since the baseline.</p>'
    shown = shown_flips(view.flips, MAX_FLIPS, options.seed)[:STRIP_FLIPS]
    size = _flip_size(options.thumb_size)
    figures = "".join(_strip_figure(view, flip, store, size) for flip in shown)
    total = len(view.flips)
    return (
        f'<p class="note">{total} seed{"s" if total != 1 else ""} changed {_esc(view.attribute)} since the '
        f"baseline (showing {len(shown)}; candidate images):</p>"
        f'<div class="flip-strip" data-flips="{total}" data-shown="{len(shown)}">{figures}</div>'
    )


def _strip_figure(view: CategoryView, flip: Flip, store: ImageStore, size: int) -> str:
    what = f"seed {flip.seed}: {flip.before} -> {flip.after}"
    img = _image_html(flip.candidate.path, what, store, what, size=size)
    # the caption links to the pair in the gallery (the image, with --full-images, to the full image)
    return (
        f'<figure class="strip" data-seed="{flip.seed}">{img}<figcaption><a href="#{_flip_id(view, flip)}">'
        f"{_esc(_short_seed(flip.seed))}: {_esc(flip.before)} -&gt; {_esc(flip.after)}</a></figcaption></figure>"
    )


def _flip_id(view: CategoryView, flip: Flip) -> str:
    return f"flip-{view.index}-{flip.seed}"


def _short_seed(seed: int | None) -> str:
    """A seed as a caption shows it: whole up to 8 digits, else its last 6 digits after an ellipsis (the
    whole seed is in the image's title)."""
    if seed is None:
        return ""
    text = str(seed)
    return text if len(text) <= SEED_DIGITS else "…" + text[-6:]


def _contents(views: Sequence[CategoryView]) -> str:
    if not views:
        return "<p>This run holds no categories.</p>"
    items = "".join(
        f'<li><a href="#{v.section_id}">{_esc(v.name)}</a> {_badge(v.verdict)} '
        f'<span class="note">n={v.result.n}</span></li>'
        for v in views
    )
    return f'<h3>Categories</h3><ul class="contents">{items}</ul>'


def _aggregates(run: RunResult) -> str:
    """The aggregates across categories, with the verdicts of the tests that gate them."""
    agg = run.aggregates
    if agg is None:
        return ""
    checks = [c for t in run.tests if t.category == "aggregate" for c in t.checks]
    rows = []
    for metric_id, value in agg.metrics.items():
        verdicts = [c for c in checks if c.metric == metric_id]
        verdict = worst_of(c.verdict for c in verdicts) if verdicts else None
        why = "; ".join(f"{c.threshold}: {c.note}" for c in verdicts)
        rows.append(
            f"<tr><td>{_esc(metric_id)}</td><td>{_value(value, agg.null_reasons.get(metric_id))}</td>"
            f"<td>{_interval(agg.intervals.get(metric_id))}</td>"
            f"<td>{_badge(verdict) if verdict else '-'}</td><td>{_esc(why)}</td></tr>"
        )
    worst = "".join(
        f"<li>{_esc(w.category)}: amplification {w.amplification:+.4f}, gap {w.gap:+.4f} (n={w.n})</li>"
        for w in agg.worst
    )
    return (
        f'<section class="aggregates" id="aggregates"><h2>Aggregates over {len(agg.categories)} categories</h2>'
        '<table class="metrics"><tr><th>aggregate</th><th>value</th><th>95% interval</th><th>verdict</th>'
        f"<th>why</th></tr>{''.join(rows)}</table>"
        + (f"<h3>Most amplified</h3><ul>{worst}</ul>" if worst else "")
        + "</section>"
    )


def _not_run(run: RunResult) -> str:
    if not run.not_run:
        return ""
    items = "".join(f"<li><code>{_esc(t.nodeid)}</code>: {_esc(t.reason)}</li>" for t in run.not_run)
    return f'<h3>Tests that did not run ({len(run.not_run)})</h3><ul class="not-run">{items}</ul>'


def _baseline_events(run: RunResult, base: Path | None) -> str:
    if not run.baselines:
        return ""
    counts = Counter(run.baselines.values())
    summary = ", ".join(f"{n} {event}" for event, n in sorted(counts.items()))
    shown, root = relative_paths(list(run.baselines), base)
    rows = "".join(
        f"<tr><td><code>{_esc(shown[p])}</code></td><td>{_esc(e)}</td></tr>" for p, e in run.baselines.items()
    )
    where = f' <span class="note">(relative to {_esc(root)})</span>' if root else ""
    return (
        f"<h3>Baselines ({_esc(summary)})</h3>"
        f'<table class="baselines"><tr><th>file{where}</th><th>event</th></tr>{rows}</table>'
    )


def relative_paths(paths: Sequence[str], base: Path | None) -> tuple[dict[str, str], str]:
    """Each path as the page shows it, and what the shown paths are relative to ("" for the page's folder).

    A relative path stays as it is; an absolute one under ``base`` (the page's folder) is shown relative
    to it; the others relative to the folder that holds them all (named by its last part), so the page
    never prints a runner's absolute path. A path that is not absolute on this system is left alone."""
    shown = {p: p for p in paths}
    absolute = [p for p in paths if PurePath(p).is_absolute() and not _is_url(p)]
    outside = []
    for p in absolute:
        relative = _relative_to(PurePath(p), base)
        if relative is None:
            outside.append(p)
        else:
            shown[p] = relative
    if not outside:
        return shown, ""
    try:
        common = PurePath(os.path.commonpath([str(PurePath(p).parent) for p in outside]))
    except ValueError:  # different drives: each is shown from its own folder
        return {**shown, **{p: PurePath(p).name for p in outside}}, "each one's own folder"
    top = common.parent  # keep the common folder's own name: "baselines/doctor.json"
    for p in outside:
        shown[p] = PurePath(p).relative_to(top).as_posix()
    return shown, "the folder that holds them"


def _relative_to(path: PurePath, base: Path | None) -> str | None:
    if base is None:
        return None
    for root in (PurePath(base), PurePath(os.path.abspath(base))):
        if root.is_absolute() and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return None


def _is_url(text: str) -> bool:
    return "://" in text


def _unmatched(run: RunResult) -> str:
    lost = [
        (run.unmatched_rows, "caption rows matched no category"),
        (run.dropped_rows, "caption rows had no name or caption"),
        (run.duplicate_rows, "caption rows repeated an image name"),
    ]
    text = "; ".join(f"{n} {what}" for n, what in lost if n)
    return f'<p class="note">{text}</p>' if text else ""


def _category(view: CategoryView, options: _Options, store: ImageStore) -> str:
    result = view.result
    about = f"n={result.n}" + (f", attribute <b>{_esc(view.attribute)}</b>" if view.attribute else "")
    if result.baseline is not None:
        about += f", baseline model <code>{_esc(result.baseline.model)}</code>"
    verdict_css = _SLUG.sub("-", view.verdict)
    parts = [
        f'<section class="category v-{verdict_css}" id="{view.section_id}" data-category="{_esc(view.name)}">',
        f"<h2>{_esc(view.name)} {_badge(view.verdict)}</h2>",
        f'<p class="note">{about}</p>',
        _why(view),
        _metric_table(view),
        _scorer_card(view),
        _chart(view),
        _grids(view, options, store),
        _flip_gallery(view, options, store),
        "</section>",
    ]
    return "\n".join(p for p in parts if p)


def _why(view: CategoryView) -> str:
    if view.verdict == NOT_TESTED:
        return (
            f'<p class="why">{NOT_GATED[0].upper() + NOT_GATED[1:]}: no check of this run judged this category '
            "(no test of it called an assertion helper, or its helpers had no rule to apply).</p>"
        )
    shown = [c for c in view.checks if c.verdict != "pass"]
    if not shown:
        count = f"All {len(view.checks)} checks pass" if len(view.checks) != 1 else "Its one check passes"
        return f'<p class="why">{count}.</p>'
    linked: dict[str, str] = {}  # driving image id -> the metric whose line links it (each image linked once)
    done: set[str] = set()  # metrics whose drivers are listed
    items = "".join(_why_item(view, check, linked, done) for check in view.flagged)
    return f'<h3>Why</h3><ul class="why">{items}</ul>'


def _why_item(view: CategoryView, check: Check, linked: dict[str, str], done: set[str]) -> str:
    value = "null" if check.value is None else f"{_num(check.value)} {_interval(check.interval)}"
    text = (
        f"{_badge(_verdict_label(check))} <b>{_esc(check.metric)}</b> ({_esc(check.kind)}) = {value}; "
        f'rule {_esc(check.threshold)}: <span class="note">{_esc(check.note)}</span>'
    )
    if check.verdict == "fail" and check.metric in view.drivers:
        what, ids = view.drivers[check.metric]
        if check.metric in done:  # a second failing check of the metric: its images are above
            return f'<li class="{check.verdict}">{text}</li>'
        done.add(check.metric)
        shown = [i for i in ids if i in view.anchors]
        fresh = [i for i in shown if i not in linked]
        links = " ".join(f'<a href="#{view.anchors[i]}">{_esc(i)}</a>' for i in fresh)
        before = ", ".join(sorted({linked[i] for i in shown if i in linked}))
        if before:
            links += f' <span class="note">(and {len(shown) - len(fresh)} linked above, for {_esc(before)})</span>'
        text += f'<br><span class="drivers">driven by {_esc(what)}: {links or "no images"}</span>'
        linked.update((i, check.metric) for i in fresh)
    return f'<li class="{check.verdict}">{text}</li>'


def _metric_table(view: CategoryView) -> str:
    """One row per metric: its value and interval, then every check of it (which test, which rule, the
    baseline, change and p-value of a regression, the verdict); the row takes the worst verdict."""
    result = view.result
    by_metric: dict[str, list[tuple[str, Check]]] = {}
    for nodeid, check in view.tested:
        by_metric.setdefault(check.metric, []).append((nodeid, check))
    order = list(result.metrics) + [m for m in by_metric if m not in result.metrics]
    rows = []
    for metric_id in order:
        checks = by_metric.get(metric_id, [])
        raw_value = result.metrics.get(metric_id)
        if metric_id not in result.metrics and checks:  # a check's own metric (not one the run measured)
            first = checks[0][1]
            value = "null" if first.value is None else _num(first.value)
            interval = _interval(first.interval)
        else:
            value = _value(raw_value, result.null_reasons.get(metric_id))
            interval = _interval(result.intervals.get(metric_id))
        verdict = worst_of(c.verdict for _, c in checks) if checks else ""
        listed = "".join(_check_item(view, nodeid, check) for nodeid, check in checks)
        cells = [
            _esc(metric_id),
            value,
            interval,
            f'<ul class="checks">{listed}</ul>' if listed else "-",
            _verdict_link(view, metric_id, verdict) if verdict else "-",
        ]
        css = verdict if verdict in ("fail", "warn") else ""
        rows.append(_row(cells, css, numeric=not isinstance(raw_value, dict)))
    head = "".join(f"<th>{h}</th>" for h in ("metric", "value", "95% interval", "checks", "verdict"))
    return f'<h3>Metrics</h3><table class="metrics"><tr>{head}</tr>{"".join(rows)}</table>'


def _verdict_link(view: CategoryView, metric_id: str, verdict: str) -> str:
    badge = _badge(verdict)
    ids = view.drivers.get(metric_id, ("", []))[1] if verdict == "fail" else []
    first = next((view.anchors[i] for i in ids if i in view.anchors), None)
    return f'<a href="#{first}" title="the images that drive it">{badge}</a>' if first is not None else badge


def _scorer_card(view: CategoryView) -> str:
    """With a scorer card: the raw metrics beside the corrected ones, and the card's confusion and kappa."""
    result = view.result
    card = result.scorer_card
    if card is None or result.raw_metrics is None:
        return ""
    rows = []
    for metric_id, raw in result.raw_metrics.items():
        value = result.metrics.get(metric_id)
        if isinstance(raw, float) and isinstance(value, float) and raw != value:
            cells = [_esc(metric_id), _num(raw), _interval(result.raw_intervals.get(metric_id)), _num(value)]
            cells.append(_interval(result.intervals.get(metric_id)))
            rows.append(_row(cells))
    head = "".join(f"<th>{h}</th>" for h in ("metric", "raw", "raw interval", "corrected", "corrected interval"))
    parts = [
        f'<h3>Scorer card</h3><p class="note">Corrected for the errors of scorer <code>{_esc(card.scorer)}</code> '
        f"measured on {card.n_images} human-labelled images (hash <code>{_esc(card.images_hash)}</code>).</p>",
        f'<table class="metrics"><tr>{head}</tr>{"".join(rows)}</table>',
    ]
    for name, entry in card.attributes.items():
        kappa = "n/a" if entry.kappa.value is None else f"{entry.kappa.value:.3f}"
        header = "".join(f"<th>{_esc(c)}</th>" for c in entry.classes)
        body = "".join(
            f"<tr><th>{_esc(c)}</th>" + "".join(f'<td class="num">{x}</td>' for x in row) + "</tr>"
            for c, row in zip(entry.classes, entry.confusion, strict=True)
        )
        parts.append(
            f"<p>{_esc(name)}: Cohen's kappa {kappa} (rows: human label, columns: scorer)</p>"
            f'<table class="metrics"><tr><th></th>{header}</tr>{body}</table>'
        )
    return "\n".join(parts)


def _check_item(view: CategoryView, nodeid: str, check: Check) -> str:
    """One check of a metric, in its row: verdict, rule, the regression's numbers, and the test that made it."""
    parts = [_badge(check.verdict), f"{_esc(check.kind)} {_esc(check.threshold)}"]
    if check.baseline is not None:
        parts.append(f'baseline <span class="baseline">{_num(check.baseline)}</span>')
    if check.delta is not None:
        parts.append(f'change <span class="change">{_num(check.delta, "+.4f")}</span>')
    if check.p_value is not None:
        parts.append(f'adjusted p <span class="p">{_num(check.p_value, ".2g")}</span>')
    test = nodeid.rpartition("::")[2] or nodeid
    return (
        f'<li class="{check.verdict}" data-kind="{_esc(check.kind)}" title="{_esc(check.note)}">'
        f'{" ".join(parts)} <span class="note">(<code title="{_esc(nodeid)}">{_esc(test)}</code>)</span></li>'
    )


def _row(cells: Sequence[str], css: str = "", *, numeric: bool = True) -> str:
    # a distribution's value is text (group shares): left-aligned and free to wrap
    columns = (1, 2) if numeric else (2,)
    tds = "".join(f'<td class="num">{c}</td>' if i in columns else f"<td>{c}</td>" for i, c in enumerate(cells))
    return f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>"


def _chart(view: CategoryView) -> str:
    if view.attribute is None:
        return ""
    candidate = candidate_shares(view)
    if not candidate:
        return f'<h3>Shares of {_esc(view.attribute)}</h3><p class="note">No image has a known label.</p>'
    baseline = group_shares(view, view.result.baseline.images) if view.result.baseline is not None else None
    reference = {g: v for g, v in (view.reference or {}).items() if g in candidate}
    groups = [mask_credentials(g) for g in candidate]
    svg = share_chart_svg(
        groups,
        {mask_credentials(g): bar for g, bar in candidate.items()},
        {mask_credentials(g): bar for g, bar in baseline.items()} if baseline is not None else None,
        chart_id=f"chart{view.index}",
        reference={mask_credentials(g): v for g, v in reference.items()} or None,
    )
    corrected = any(bar.raw is not None for bar in candidate.values())
    head = ["group", "baseline", "candidate (corrected)" if corrected else "candidate"]
    head += ["candidate, raw (scorer's labels)"] if corrected else []
    head += ["reference"] if reference else []
    rows = "".join(
        _share_row(g, candidate.get(g), (baseline or {}).get(g), corrected, reference.get(g) if reference else False)
        for g in candidate
    )
    over = (
        "declared groups (unknown labels left out)" if view.result.mode == "strict" and view.declared else "all images"
    )
    notes = [
        f"Shares over {over}, with 95% intervals (the run's own where it measured the share, else exact from "
        "the counts)."
    ]
    if corrected:
        notes.append(
            "The candidate's bars and intervals are corrected for the scorer's errors (the scorer card); the "
            "red diamonds mark the raw shares of the scorer's own labels."
        )
    if reference:
        notes.append("The dashed green ticks mark the suite's reference shares.")
    return (
        f"<h3>Shares of {_esc(view.attribute)}</h3>"
        f'<div class="chart">{svg}</div>'
        f'<table class="shares"><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{rows}</table>'
        f'<p class="note">{_esc(" ".join(notes))}</p>'
    )


def _share_row(
    group: str,
    candidate: ShareBar | None,
    baseline: ShareBar | None,
    corrected: bool,
    reference: float | bool | None,
) -> str:
    def cell(bar: ShareBar | None) -> str:
        if bar is None:
            return '<td class="num">-</td>'
        return f'<td class="num">{bar.share:.1%} [{bar.low:.1%}, {bar.high:.1%}]</td>'

    cells = f"<tr><td>{_esc(group)}</td>{cell(baseline)}{cell(candidate)}"
    if corrected:
        raw = None if candidate is None else candidate.raw
        cells += f'<td class="num raw">{"-" if raw is None else f"{raw:.1%}"}</td>'
    if reference is not False:
        cells += f'<td class="num reference">{"-" if reference is None else f"{reference:.1%}"}</td>'
    return cells + "</tr>"


def _grids(view: CategoryView, options: _Options, store: ImageStore) -> str:
    images = view.result.images
    if not images:
        return '<h3>Images</h3><p class="note">This result keeps no per-image data.</p>'
    driven = view.driven()
    by_group: dict[str, list[ImageResult]] = {}
    for image in images:
        by_group.setdefault(view.label(image), []).append(image)
    scorer = view.result.scorer or ""
    if scorer.startswith("labels:") and not any(image.path for image in images):
        return _label_counts(by_group, view.groups, scorer)
    parts = ["<h3>Images by label</h3>"]
    for group in [g for g in view.groups if g in by_group]:
        members = {image.id: image for image in reversed(by_group[group])}
        first = [i for i in driven if i in members]
        chosen = sample_ids(list(members), options.max_per_group, options.seed, first)
        shown = _seed_order(members[i] for i in chosen)
        total = len(by_group[group])
        figures = "".join(_thumb_figure(view, image, store, driven.get(image.id, [])) for image in shown)
        parts.append(
            f'<div class="group" data-group="{_esc(group)}" data-count="{total}" data-shown="{len(shown)}">'
            f"<h4>{_esc(group)}: {total} image{'s' if total != 1 else ''} "
            f'<span class="note">(showing {len(shown)} of {total})</span></h4>'
            f'<div class="grid">{figures}</div></div>'
        )
    return "\n".join(parts)


def _label_counts(by_group: dict[str, list[ImageResult]], groups: Sequence[str], scorer: str) -> str:
    """A run of precomputed labels generated no image: the labels by group, with their image ids."""
    rows = "".join(
        f"<tr><td>{_esc(group)}</td><td>{len(by_group[group])}</td>"
        f"<td>{_esc(', '.join(image.id for image in by_group[group][:12]))}"
        f"{' ...' if len(by_group[group]) > 12 else ''}</td></tr>"
        for group in [*[g for g in groups if g in by_group], *[g for g in by_group if g not in groups]]
    )
    return (
        '<h3>Labels by group</h3><p class="note no-images">No image grids: the labels were precomputed '
        f"({_esc(scorer)}), so this run generated no image; the labels are looked up by image id.</p>"
        f"<table><tr><th>label</th><th>images</th><th>image ids</th></tr>{rows}</table>"
    )


def _thumb_figure(view: CategoryView, image: ImageResult, store: ImageStore, drives: Sequence[str]) -> str:
    seed_text = None if image.seed is None else f"seed {image.seed}"
    title = " | ".join(x for x in (image.id, seed_text, image.prompt, image.caption, _labels_text(image)) if x)
    css = "thumb driver" if drives else "thumb"
    anchor = f' id="{view.anchors[image.id]}"' if image.id in view.anchors else ""
    seed = "" if image.seed is None else f"seed {_short_seed(image.seed)}"
    caption = f'<span class="seed">{_esc(seed or image.id)}</span>'
    if drives:  # on its own line, never cut off with the seed
        caption += f' <span class="drives">drives {_esc(", ".join(drives))}</span>'
    inner = _image_html(image.path, f"{image.id} ({view.label(image)})", store, title)
    return f'<figure class="{css}"{anchor}>{inner}<figcaption>{caption}</figcaption></figure>'


def _labels_text(image: ImageResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in image.labels.items())


def _image_html(
    path: str | None,
    alt: str,
    store: ImageStore,
    title: str,
    *,
    missing: str = "image not found",
    size: int | None = None,
) -> str:
    size = size or store.thumb_size
    thumb = store.thumb(path, size)
    if thumb is None or path is None:
        return f'<div class="missing" title="{_esc(title)}">{_esc(missing)}</div>'
    scale = size / max(thumb.width, thumb.height)
    up = scale > 1
    width, height = (round(thumb.width * scale), round(thumb.height * scale)) if up else (thumb.width, thumb.height)
    img = (
        f'<img src="{thumb.src}" width="{width}" height="{height}" alt="{_esc(alt)}" title="{_esc(title)}"'
        + (' class="up"' if up else "")
        + ">"
    )
    link = store.link(path)
    return f'<a href="{_esc(link)}">{img}</a>' if link is not None else img


def _flip_gallery(view: CategoryView, options: _Options, store: ImageStore) -> str:
    if view.attribute is None:
        return ""
    if view.result.baseline is None:
        return '<h3>Flips</h3><p class="note">No approved baseline in this run: no flips to show.</p>'
    every = view.flips
    directions = Counter((f.before, f.after) for f in every)
    summary = ", ".join(
        f"{_esc(a)} -&gt; {_esc(b)}: {n}" for (a, b), n in sorted(directions.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    shown = shown_flips(every, MAX_FLIPS, options.seed)
    head = (
        f"<h3>Flips: {len(every)} seed{'s' if len(every) != 1 else ''} changed {_esc(view.attribute)} "
        f"since the baseline</h3>"
    )
    if not every:
        return head + '<p class="note">No seed present in both runs changed its label.</p>'
    size = _flip_size(options.thumb_size)
    pairs = "".join(_flip_html(flip, store, size, _flip_id(view, flip)) for flip in shown)
    return (
        f'{head}<p class="flip-summary">{summary} <span class="note">(showing {len(shown)} of {len(every)})</span></p>'
        f'<div class="flips" data-flips="{len(every)}" data-shown="{len(shown)}">{pairs}</div>'
    )


def _flip_size(thumb_size: int) -> int:
    return max(1, round(thumb_size * FLIP_SCALE))


def _flip_html(flip: Flip, store: ImageStore, size: int, anchor: str) -> str:
    title = f"seed {flip.seed}"
    before = _image_html(
        flip.baseline.path,
        f"baseline, seed {flip.seed} ({flip.before})",
        store,
        title,
        missing="baseline image no longer in the cache",
        size=size,
    )
    after = _image_html(flip.candidate.path, f"candidate, seed {flip.seed} ({flip.after})", store, title, size=size)
    return (
        f'<div class="flip" id="{anchor}" data-seed="{flip.seed}"><div class="pair">'
        f'<figure class="before">{before}<figcaption>baseline: {_esc(flip.before)}</figcaption></figure>'
        f'<figure class="after">{after}<figcaption>candidate: {_esc(flip.after)}</figcaption></figure></div>'
        f"<p>seed {flip.seed}: {_esc(flip.before)} -&gt; {_esc(flip.after)}</p></div>"
    )
