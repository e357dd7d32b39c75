"""Replay a caption file: read (image, caption) rows, bucket them into categories, measure.

This is the paper's whole pipeline after captioning, so on the authors' caption files paper mode
reproduces their published numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pytest_t2ibias.annotate.captions import CaptionAnnotator, check_mode
from pytest_t2ibias.errors import CaptionFileError as CaptionFileError
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.results import RunResult
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode


@dataclass(frozen=True)
class CaptionRow:
    image: str
    caption: str
    line: int


@dataclass(frozen=True)
class CaptionTable:
    """The usable rows of a caption file, and what was dropped."""

    path: str
    rows: list[CaptionRow]
    header: list[str] | None
    dropped: int


def read_caption_csv(path: str | Path) -> CaptionTable:
    """Read a caption CSV: first column the image name, second the caption.

    A header row is recognised when its first cell has neither a file extension nor a digit
    (``Image``, ``File Name``; not ``Beauty_0.jpg`` or ``beauty_0``). Blank lines, rows with an empty
    name or caption, and extra columns are ignored.

    Raises:
        CaptionFileError: missing file, not UTF-8 text, not CSV, or no caption column.
    """
    path = Path(path)
    if not path.is_file():
        raise CaptionFileError(f"{path}: no such caption file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise CaptionFileError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise CaptionFileError(f"{path}: not UTF-8 text (byte {err.start}): is this a caption CSV?") from None
    if "\x00" in text:
        raise CaptionFileError(f"{path}: binary data, not a caption CSV")
    try:
        raw = [(i, row) for i, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)]
    except csv.Error as err:
        raise CaptionFileError(f"{path}: not a readable CSV: {err}") from None
    raw = [(i, row) for i, row in raw if any(cell.strip() for cell in row)]
    if not raw:
        raise CaptionFileError(f"{path}: no rows")
    header = None
    first = raw[0][1][0].strip()
    if "." not in first and not any(ch.isdigit() for ch in first):
        header = [cell.strip() for cell in raw[0][1]]
        raw = raw[1:]
    if not any(len(row) >= 2 and row[1].strip() for _, row in raw):
        raise CaptionFileError(f"{path}: no caption column (need image name, then caption, per row)")
    rows, dropped = [], 0
    for line, row in raw:
        name = row[0].strip()
        caption = row[1].strip() if len(row) >= 2 else ""
        if name and caption:
            rows.append(CaptionRow(name, caption, line))
        else:
            dropped += 1
    return CaptionTable(str(path), rows, header, dropped)


def bucket_rows(rows: list[CaptionRow], suite: Suite) -> tuple[dict[str, list[CaptionRow]], list[CaptionRow]]:
    """Rows per category by the suite's ``image_names`` rules (file order kept), and the unmatched."""
    buckets: dict[str, list[CaptionRow]] = {name: [] for name in suite.categories}
    unmatched = []
    for row in rows:
        category = suite.category_for_image(row.image)
        if category is None:
            unmatched.append(row)
        else:
            buckets[category].append(row)
    return buckets, unmatched


def replay(path: str | Path, suite: Suite, mode: Mode = "paper", model_name: str | None = None) -> RunResult:
    """Label every caption of ``path`` and compute every metric (with its interval) of every category."""
    mode = check_mode(mode)
    table = read_caption_csv(path)
    buckets, unmatched = bucket_rows(table.rows, suite)
    annotator = CaptionAnnotator(suite, mode=mode)
    model = model_name or Path(path).stem
    results = []
    for category, rows in buckets.items():
        records = annotator.annotate_many([(r.image, r.caption) for r in rows], category)
        data = category_data(suite, category, records, mode)
        results.append(measure(suite, data, model=model, scorer=f"captions:lexicon|mode={mode}", records=records))
    return RunResult.from_results(
        results,
        model=model,
        unmatched_rows=len(unmatched),
        unmatched_images=[row.image for row in unmatched],
        dropped_rows=table.dropped,
    )
