"""Replay a caption file: read (image, caption) rows, bucket them into categories, measure.

This is the paper's whole pipeline after captioning, so on the authors' caption files paper mode
reproduces their published numbers.
"""

from __future__ import annotations

import _csv
import csv
import io
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pytest_t2ibias._io import clip
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
    """The readable rows of a caption file, and what could not be read.

    ``rows``: every readable row in file order, a repeated image name included (``duplicate_lines``: the
    rows whose image name an earlier row already had; :meth:`rows_for` says which rows a mode measures).
    Rows that could not be read: ``dropped_lines`` (no image name or no caption) and ``malformed_lines``
    (a number of cells other than the header's, or than most rows' without a header: an unquoted
    delimiter inside a caption, a missing cell). All hold line numbers (the line a row starts on).
    """

    path: str
    rows: list[CaptionRow]
    header: list[str] | None
    dropped: int
    delimiter: str = ","
    dropped_lines: tuple[int, ...] = ()
    duplicate_lines: tuple[int, ...] = ()
    malformed_lines: tuple[int, ...] = ()

    @property
    def duplicates(self) -> int:
        """Readable rows whose image name came earlier in the file."""
        return len(self.duplicate_lines)

    @property
    def malformed(self) -> int:
        """Rows with the wrong number of cells."""
        return len(self.malformed_lines)

    @property
    def bad_rows(self) -> int:
        """Every row that could not be read: no name or caption, or the wrong number of cells. A repeated
        image name is a readable row, not a bad one."""
        return self.dropped + self.malformed

    def rows_for(self, mode: Mode) -> list[CaptionRow]:
        """The rows ``mode`` measures: paper mode every row, as the authors' notebooks counted them (an
        image listed twice counts twice); strict mode the first row of each image name."""
        if mode == "paper" or not self.duplicate_lines:
            return list(self.rows)
        repeated = set(self.duplicate_lines)
        return [row for row in self.rows if row.line not in repeated]


#: The delimiters a caption file may use; on a tie the first wins.
DELIMITERS = ",;\t|"
#: How much of a file the delimiter is guessed from.
_SAMPLE_CHARS = 64 * 1024
_SAMPLE_ROWS = 500


def detect_delimiter(text: str) -> str:
    """The delimiter of a caption CSV: ``,``, ``;``, tab or ``|`` (``,`` when nothing fits better).

    Each candidate splits a sample of the file (quotes respected); a row counts for it when it has the
    most common number of cells (at least two) and its first cell, an image name, holds no other
    candidate. ``csv.Sniffer`` alone is not used: on a comma file whose captions contain ``;`` (the
    paper's Gemini captions) it answers ``;``.

    >>> detect_delimiter("image;caption\\nBeauty_0.jpg;A woman, smiling.\\n")
    ';'
    >>> detect_delimiter('image,caption\\nBeauty_0.jpg,"A woman; smiling."\\n')
    ','
    """
    sample = text[:_SAMPLE_CHARS]
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        others = DELIMITERS.replace(delimiter, "")
        try:
            rows = [row for row in itertools.islice(_reader(sample, delimiter), _SAMPLE_ROWS) if row]
        except csv.Error:
            continue
        widths = Counter(len(row) for row in rows if len(row) >= 2)
        if not widths:
            continue
        width = widths.most_common(1)[0][0]
        score = sum(1 for row in rows if len(row) == width and not any(ch in row[0] for ch in others))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _reader(text: str, delimiter: str) -> _csv.Reader:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def read_caption_csv(path: str | Path) -> CaptionTable:
    """Read a caption CSV: first column the image name, second the caption.

    The delimiter (``,``, ``;``, tab or ``|``) is detected (:func:`detect_delimiter`). A header row is
    recognised when its first cell has neither a file extension nor a digit (``Image``, ``File Name``; not
    ``Beauty_0.jpg`` or ``beauty_0``). Blank lines are ignored, and so are the cells of unnamed header
    columns. A row with fewer cells than the header names, or more than it has (without a header: than most
    rows have; empty trailing cells aside), is malformed: its caption was cut at an unquoted delimiter, or a
    cell is missing. Rows with an empty name or caption are dropped. A row whose image name an earlier row had
    is kept and listed in ``duplicate_lines`` (:meth:`CaptionTable.rows_for`). The table gives each kind with
    its line numbers.

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
    delimiter = detect_delimiter(text)
    reader = _reader(text, delimiter)
    raw: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for row in reader:
            raw.append((line, row))
            line = reader.line_num + 1
    except csv.Error as err:
        raise CaptionFileError(f"{path}: line {line}: not a readable CSV: {clip(str(err))}") from None
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
    if header is not None:  # as many cells as the header names, at most as many as it has (unnamed: ignored)
        fewest, most = max(_width(header), 2), max(len(header), 2)
    else:
        fewest, most = 2, max(Counter(len(row) for _, row in raw).most_common(1)[0][0], 2)
    rows: list[CaptionRow] = []
    dropped: list[int] = []
    malformed: list[int] = []
    duplicates: list[int] = []
    seen: set[str] = set()
    for line, row in raw:
        name = row[0].strip()
        caption = row[1].strip() if len(row) >= 2 else ""
        if not (name and caption):
            dropped.append(line)
        elif len(row) < fewest or _width(row) > most:
            malformed.append(line)
        else:
            if name in seen:
                duplicates.append(line)
            seen.add(name)
            rows.append(CaptionRow(name, caption, line))
    return CaptionTable(
        str(path), rows, header, len(dropped), delimiter, tuple(dropped), tuple(duplicates), tuple(malformed)
    )


def _width(row: list[str]) -> int:
    """The cells of a row, empty trailing cells aside (``a.jpg,caption,`` has two)."""
    width = len(row)
    while width > 2 and not row[width - 1].strip():
        width -= 1
    return width


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
    """Label every caption of ``path`` and compute every metric (with its interval) of every category.

    Rows that could not be read are left out and counted in ``dropped_rows`` (no name or caption, or the
    wrong number of cells). A repeated image name is counted in ``duplicate_rows``: paper mode measures
    every row (as the authors' notebooks did), strict mode the first (:meth:`CaptionTable.rows_for`);
    :func:`read_caption_csv` gives the line numbers.
    """
    return replay_table(read_caption_csv(path), suite, mode=mode, model_name=model_name)


def replay_table(table: CaptionTable, suite: Suite, mode: Mode = "paper", model_name: str | None = None) -> RunResult:
    """:func:`replay` on a caption file already read."""
    mode = check_mode(mode)
    buckets, unmatched = bucket_rows(table.rows_for(mode), suite)
    annotator = CaptionAnnotator(suite, mode=mode)
    model = model_name or Path(table.path).stem
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
        dropped_rows=table.bad_rows,
        duplicate_rows=table.duplicates,
    )
