"""Charts for the HTML report: matplotlib figures as inline SVG, deterministic and self-contained.

The SVG is stripped of what an inline, offline page does not need and must not have: the XML prolog,
the DOCTYPE (a URL), the namespace declarations (URLs; an HTML parser supplies them), the RDF metadata,
and every element id nothing refers to. The ids that are referred to (clip paths, markers) get the
chart's prefix, so several charts in one page never share an id.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Longest group name drawn on an axis; a longer one is cut (the page shows it whole).
MAX_LABEL = 32
#: Figure geometry in inches: width, left margin (a fraction, for the group names), margins, one group's row.
WIDTH, LEFT, BOTTOM, TOP, ROW = 6.4, 0.25, 0.35, 0.3, 0.42
#: Legend entries per row, and the height in inches each further row of the legend adds.
LEGEND_COLUMNS, LEGEND_ROW = 2, 0.18
#: Space between an interval's end and its share label, in share units.
LABEL_GAP = 0.015
BASELINE_COLOUR = "#9e9e9e"
CANDIDATE_COLOUR = "#1f77b4"
RAW_COLOUR = "#d62728"
REFERENCE_COLOUR = "#2e7d32"

_ID = re.compile(r'\sid="([^"]*)"')
_REF = re.compile(r'(url\(#|href="#)([^")]*)')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


@dataclass(frozen=True)
class ShareBar:
    """One group's share of the attribute under test, with its interval; with a scorer card the share and
    interval are corrected and ``raw`` is the share of the scorer's own labels (drawn as a marker)."""

    share: float
    low: float
    high: float
    raw: float | None = None


def share_chart_svg(
    groups: Sequence[str],
    candidate: Mapping[str, ShareBar],
    baseline: Mapping[str, ShareBar] | None,
    *,
    chart_id: str,
    reference: Mapping[str, float] | None = None,
) -> str:
    """Horizontal bars of each group's share, baseline beside candidate, with their intervals, as an
    inline ``<svg>`` element whose ids all start with ``chart_id``.

    A bar with a ``raw`` share (a scorer card corrected it) also gets a marker at the raw share, and
    ``reference`` (group -> share: labour statistics, parity) a vertical tick across the group's row."""
    rows = len(groups)
    height = 0.38 if baseline is not None else 0.6
    series: list[tuple[str, Mapping[str, ShareBar], str, float]] = []
    if baseline is not None:
        series.append(("baseline", baseline, BASELINE_COLOUR, -height / 2))
    series.append(("candidate", candidate, CANDIDATE_COLOUR, height / 2 if baseline is not None else 0.0))
    entries = len(series) + sum(any(b.raw is not None for b in bars.values()) for _, bars, _, _ in series)
    entries += 1 if reference and any(g in reference for g in groups) else 0
    legend_rows = math.ceil(entries / LEGEND_COLUMNS)
    top = TOP + LEGEND_ROW * (legend_rows - 1)
    inches = BOTTOM + top + ROW * max(rows, 1)
    fig = Figure(figsize=(WIDTH, inches))
    ax = fig.add_axes((LEFT, BOTTOM / inches, 0.95 - LEFT, ROW * max(rows, 1) / inches))
    positions = list(range(rows))
    for name, bars, colour, offset in series:
        _draw_series(ax, groups, bars, colour, offset, height, name)
    for name, bars, _, offset in series:
        _draw_raw(ax, groups, bars, offset, height, name)
    if reference:
        _draw_reference(ax, groups, reference)
    ax.set_yticks(positions, [_short(g) for g in groups], parse_math=False)
    ax.invert_yaxis()  # first group on top, as in the grids below
    ax.set_xlim(0, 1.12)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: (" raw " in f" {labels[i]} ", labels[i] == "reference"))
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=LEGEND_COLUMNS,
        fontsize=8,
        frameon=False,
        borderaxespad=0.2,
    )
    return _inline_svg(fig, chart_id)


def _draw_series(
    ax: Axes,
    groups: Sequence[str],
    bars: Mapping[str, ShareBar],
    colour: str,
    offset: float,
    height: float,
    name: str,
) -> None:
    shown = [(i, bars[g]) for i, g in enumerate(groups) if g in bars]
    if not shown:
        return
    y = [i + offset for i, _ in shown]
    shares = [bar.share for _, bar in shown]
    errors = [[bar.share - bar.low for _, bar in shown], [bar.high - bar.share for _, bar in shown]]
    corrected = any(bar.raw is not None for _, bar in shown)
    ax.barh(y, shares, height=height * 0.92, color=colour, label=f"{name} (corrected)" if corrected else name)
    ax.errorbar(shares, y, xerr=errors, fmt="none", ecolor="#333333", elinewidth=1, capsize=2)
    for yi, bar in zip(y, (bar for _, bar in shown), strict=True):
        end = max(bar.high, bar.raw if bar.raw is not None else 0.0)  # clear of the interval and the raw marker
        ax.text(end + LABEL_GAP, yi, f"{bar.share:.1%}", va="center", fontsize=7, parse_math=False)


def _draw_raw(
    ax: Axes, groups: Sequence[str], bars: Mapping[str, ShareBar], offset: float, height: float, name: str
) -> None:
    """The raw (uncorrected) shares of a corrected series, as labelled markers."""
    shown = [(i, raw) for i, g in enumerate(groups) if g in bars and (raw := bars[g].raw) is not None]
    if not shown:
        return
    ax.plot(
        [raw for _, raw in shown],
        [i + offset for i, _ in shown],
        linestyle="none",
        marker="D",
        markersize=4,
        color=RAW_COLOUR,
        label=f"{name}, raw (scorer's labels)",
    )


def _draw_reference(ax: Axes, groups: Sequence[str], reference: Mapping[str, float]) -> None:
    """The reference share of each group, a dashed tick across its row."""
    shown = [(i, reference[g]) for i, g in enumerate(groups) if g in reference]
    for n, (i, share) in enumerate(shown):
        ax.plot(
            [share, share],
            [i - 0.45, i + 0.45],
            color=REFERENCE_COLOUR,
            linestyle="--",
            linewidth=1.2,
            label="reference" if n == 0 else None,
        )


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _inline_svg(fig: Figure, chart_id: str) -> str:
    # A fixed salt makes the generated ids (and so the bytes) the same on every run; text stays text.
    with matplotlib.rc_context({"svg.hashsalt": chart_id, "svg.fonttype": "none", "font.size": 9}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return clean_svg(buffer.getvalue(), chart_id)


def clean_svg(svg: str, prefix: str) -> str:
    """An SVG document as an inline ``<svg>`` element: no prolog, DOCTYPE, namespaces or metadata;
    unreferenced ids dropped and referenced ones prefixed with ``prefix``."""
    svg = svg[svg.index("<svg") :]
    svg = _METADATA.sub("", svg)
    head_end = svg.index(">")
    svg = _NAMESPACES.sub("", svg[:head_end]) + svg[head_end:]
    referenced = {m.group(2) for m in _REF.finditer(svg)}

    def rename(match: re.Match[str]) -> str:
        name = match.group(1)
        return f' id="{prefix}-{name}"' if name in referenced else ""

    svg = _ID.sub(rename, svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    return svg.strip()
