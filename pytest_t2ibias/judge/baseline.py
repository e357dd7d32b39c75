"""Approved baselines: the record a test approved, parsed and checked for staleness.

A baseline records the metrics with their intervals, n, the per-image labels keyed by seed (so a later
run can pair image i with image i), and every input that changes the numbers: model fingerprint,
scorer id, suite hash, mode, seed, images per prompt, package version. A baseline whose scorer, suite,
mode, seed or n differ from the run is *stale*: reported with what changed, never compared.

The file is written for review: top-level fields one per line, and one line per metric and per image
(its labels, its present terms), so re-approving shows one changed line per metric or image that moved.
An anchor is kept by reference (``"anchor": {"file": "anchors/<test>-<hash>.json", "sha256": ...}``) in a
content-addressed file beside the baseline, written once: a re-approval does not copy the whole first
baseline into the file under review (format 2; format 1 kept the anchor inline, and is still read).

Where baselines are stored and how they are written (syrupy, atomically) is the plugin's business
(:mod:`pytest_t2ibias.snapshot`); nothing here imports pytest or syrupy.
"""

from __future__ import annotations

import hashlib
import json
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import pytest_t2ibias
from pytest_t2ibias.errors import CorruptBaselineError
from pytest_t2ibias.provenance import Provenance

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.result import CategoryResult

__all__ = [
    "BASELINE_FORMAT",
    "AnchorRef",
    "BaselineMetric",
    "BaselineRecord",
    "CorruptBaselineError",
    "anchor_staleness",
    "check_gated",
    "parse_baseline",
    "read_baseline",
    "staleness",
]

#: The format a baseline with its anchor by reference is written in (without an anchor: 1, which older
#: versions read too).
BASELINE_FORMAT: Literal[2] = 2
#: The formats this version reads.
READ_FORMATS = (1, 2)


class BaselineMetric(BaseModel):
    # a non-finite value could never be compared (an Infinity baseline would let any regression pass)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    value: float | dict[str, float] | None
    low: float | None = None
    high: float | None = None
    method: str | None = None


class AnchorRef(BaseModel):
    """Where a baseline's anchor is kept: a file beside it, named by the hash of its content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # a plain name under anchors/ (no folder, no "..", no hidden file): the reference never leaves the folder
    file: str = Field(pattern=r"^anchors/[^/\\.][^/\\]*\.json$", max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class BaselineRecord(Provenance):
    """What a test approved: the provenance of its numbers (its fields at the top level of the file) and
    the numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    format: Literal[1, 2] = 1
    package_version: str
    metrics: dict[str, BaselineMetric] = Field(min_length=1)
    labels: dict[str, dict[str, str]] = Field(
        description="seed (or id:<image id> for an image without one) -> attribute -> label, for pairing"
    )
    present: dict[str, dict[str, list[str]]] = Field(default_factory=dict, description="seed -> list -> terms")
    anchor: BaselineRecord | None = Field(
        default=None,
        description="The first approved baseline of this test (kept through re-approvals): every run is also "
        "judged against it with the cumulative allowance, so small approved steps cannot walk the model far. "
        "None: this baseline is its own anchor.",
    )

    @model_validator(mode="after")
    def _anchor_has_no_anchor(self) -> BaselineRecord:
        if self.anchor is not None and self.anchor.anchor is not None:
            raise ValueError("an anchor has no anchor of its own")
        return self

    def as_anchor(self) -> BaselineRecord:
        """The anchor this baseline passes on to the next approval: its own, or itself."""
        return self.anchor if self.anchor is not None else self.model_copy(update={"anchor": None, "format": 1})

    @classmethod
    def from_result(cls, result: CategoryResult, anchor: BaselineRecord | None = None) -> BaselineRecord:
        metrics = {}
        for metric_id, estimate in result.metrics.items():
            iv = estimate.interval
            metrics[metric_id] = BaselineMetric(
                value=estimate.value,
                low=iv.low if iv else None,
                high=iv.high if iv else None,
                method=iv.method if iv else None,
            )
        return cls(
            **result.provenance.model_dump(),
            package_version=pytest_t2ibias.__version__,
            metrics=metrics,
            labels={_key(r.seed, r.image_id): dict(r.labels) for r in result.records},
            present={_key(r.seed, r.image_id): {k: list(v) for k, v in r.present.items()} for r in result.records},
            anchor=anchor,
        )

    def to_json(self, anchor: AnchorRef | None = None) -> str:
        """The file's text: one line per field, metric and image (see the module's docstring); ``anchor``:
        the reference written in place of the anchor record (format 2)."""
        data = self.model_dump(mode="json")
        if anchor is not None:
            data.update(format=BASELINE_FORMAT, anchor=anchor.model_dump())
        return _reviewable(data)

    def anchor_file(self, stem: str) -> tuple[str, AnchorRef]:
        """The text of this baseline's anchor file and the reference to it, ``anchors/<stem>-<hash>.json``
        (``stem``: the baseline's file name without ``.json``)."""
        assert self.anchor is not None
        text = self.anchor.to_json()
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return text, AnchorRef(file=f"anchors/{stem}-{digest[:12]}.json", sha256=digest)


#: The maps written one entry per line: a re-approval's diff is one line per metric or image that changed.
_ONE_LINE_ENTRIES = ("labels", "metrics", "present")


def _reviewable(data: dict[str, Any]) -> str:
    """JSON with sorted keys, one line per top-level field and per entry of :data:`_ONE_LINE_ENTRIES` (json's
    own indent puts every label on a line of its own: ~100 lines per image, a diff nobody reads)."""
    fields = sorted(data.items())
    lines = ["{"]
    for i, (key, value) in enumerate(fields):
        comma = "," if i < len(fields) - 1 else ""
        if key in _ONE_LINE_ENTRIES and isinstance(value, dict) and value:
            entries = sorted(value.items())
            lines.append(f" {json.dumps(key)}: {{")
            lines += [
                f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}{',' if j < len(entries) - 1 else ''}"
                for j, (k, v) in enumerate(entries)
            ]
            lines.append(f" }}{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    return "\n".join([*lines, "}"]) + "\n"


def metric_changes(old: BaselineRecord, new: BaselineRecord) -> list[str]:
    """What re-approving changed, one line each: every metric whose value moved (old -> new), else the inputs
    that changed (a new model fingerprint with the same numbers)."""
    moved = []
    for metric_id in sorted(set(old.metrics) | set(new.metrics)):
        before = old.metrics[metric_id].value if metric_id in old.metrics else None
        after = new.metrics[metric_id].value if metric_id in new.metrics else None
        if before != after:
            moved.append(f"{metric_id} {_shown_value(before)} -> {_shown_value(after)}")
    if moved:
        return moved
    inputs = [
        f"{name} {getattr(old, name)} -> {getattr(new, name)}"
        for name in ("model", "package_version")
        if getattr(old, name) != getattr(new, name)
    ]
    return inputs or ["no metric moved"]


def _shown_value(value: float | dict[str, float] | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(value.items())) + "}"
    return f"{value:.4f}"


def _key(seed: int | None, image_id: str) -> str:
    """Images are keyed by seed (what pairs them across runs); an image without one by its id."""
    return str(seed) if seed is not None else f"id:{image_id}"


def parse_baseline(text: str, source: str, folder: Path | None = None) -> BaselineRecord:
    """Parse a stored baseline; a corrupt file raises :class:`CorruptBaselineError` naming it. ``folder``:
    where the baseline lies, to read an anchor kept by reference (without it, such a baseline is corrupt)."""
    if "\ufffd" in text:
        raise CorruptBaselineError(f"{source}: baseline is not UTF-8 text")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as err:
        raise CorruptBaselineError(f"{source}: baseline has the key {err.key} twice") from None
    except ValueError as err:
        raise CorruptBaselineError(f"{source}: baseline is not valid JSON ({err})") from None
    except RecursionError:
        raise CorruptBaselineError(f"{source}: baseline is not a baseline (JSON nested too deep)") from None
    if isinstance(data, dict) and "format" in data and data["format"] not in READ_FORMATS:
        shown = reprlib.repr(data["format"])
        raise CorruptBaselineError(
            f"{source}: baseline field `format`: unknown format {shown} (this version of pytest-t2ibias "
            f"reads formats {', '.join(map(str, READ_FORMATS))}; upgrade it, or re-approve the baseline)"
        )
    if isinstance(data, dict) and isinstance(data.get("anchor"), dict) and "sha256" in data["anchor"]:
        data["anchor"] = _anchor_by_reference(data["anchor"], source, folder)
    try:
        return BaselineRecord.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(_shown(p) for p in first["loc"]) or "<top level>"
        shown = reprlib.repr(first.get("input"))
        raise CorruptBaselineError(f"{source}: baseline field `{field}`: {first['msg']} (got {shown})") from None


def _anchor_by_reference(reference: dict[str, Any], source: str, folder: Path | None) -> Any:
    """The anchor record a format-2 baseline refers to, as JSON data; checked against its hash (an anchor
    edited by hand, or the wrong file, could let a walk away from the first baseline pass)."""
    try:
        ref = AnchorRef.model_validate(reference)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(_shown(p) for p in first["loc"])
        raise CorruptBaselineError(
            f"{source}: baseline field `anchor.{where}`: {first['msg']} (got {reprlib.repr(first.get('input'))})"
        ) from None
    if folder is None:
        raise CorruptBaselineError(f"{source}: baseline field `anchor`: kept in {ref.file}, which was not read")
    path = folder / ref.file
    try:
        raw = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    except OSError:
        raw = None
    if raw is None:
        raise CorruptBaselineError(
            f"{source}: baseline field `anchor.file`: {path} is missing (commit it with the baseline)"
        )
    if hashlib.sha256(raw).hexdigest() != ref.sha256:
        raise CorruptBaselineError(f"{source}: baseline field `anchor.sha256`: {path} does not match it (edited?)")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError):
        raise CorruptBaselineError(f"{source}: baseline field `anchor.file`: {path} is not JSON") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = _shown(key)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key (json would keep the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _shown(part: object) -> str:
    """A field-name part on one line and bounded, whatever the file holds."""
    text = " ".join(str(part).split())
    return text if len(text) <= 60 else text[:57] + "..."


def check_gated(stored: BaselineRecord, gated: Iterable[str], source: str) -> None:
    """A baseline must hold every metric the policy gates against it (a missing one would pass unseen).

    Raises:
        CorruptBaselineError: naming the file and the first missing metric.
    """
    missing = [m for m in gated if m not in stored.metrics]
    if missing:
        raise CorruptBaselineError(
            f"{source}: baseline field `metrics.{missing[0]}`: missing, but the policy gates it "
            f"(missing: {', '.join(missing)}); re-approve the baseline"
        )


def read_baseline(path: str | Path) -> BaselineRecord | None:
    """The baseline stored at ``path``; ``None`` when there is none.

    Raises:
        CorruptBaselineError: the file cannot be read, is not UTF-8 JSON, or does not match the schema.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise CorruptBaselineError(f"{path}: cannot read baseline: {err.strerror}") from None
    # an undecodable file must read as corrupt, not as missing
    return parse_baseline(raw.decode("utf-8", errors="replace"), str(path), Path(path).parent)


def anchor_staleness(anchor: Provenance, baseline: Provenance) -> list[str]:
    """What changed between the anchor and the baseline that carries it, among the inputs that must match."""
    return anchor.changes(baseline, Provenance.ANCHOR)


def staleness(stored: Provenance, current: Provenance) -> list[str]:
    """What changed between the approved run and this one, for each input that must match."""
    return stored.changes(current, Provenance.COMPARABLE)
