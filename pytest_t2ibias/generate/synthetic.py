"""A synthetic model with known bias: images that carry their own labels as a visible mark.

``SyntheticGenerator`` draws, for each image, a label of every attribute of the prompt's category and a
presence bit for every term of its term lists, from probabilities the user configures; it paints them as
a grid of solid cells; :class:`~pytest_t2ibias.annotate.synthetic.SyntheticAnnotator` reads them back
exactly. A bias policy, the plugin and the statistical benchmarks can then be tested against a model
whose true distribution is known, without weights or a GPU.

**Draws.** Image content depends only on its seed and its category's configuration:
``np.random.default_rng(seed).random(k)`` gives one uniform per attribute (the primary ``attribute``
first, then ``also_annotate`` in the category's order), then one per term (lists in
``Category.list_names()`` order, terms in list order). ``k`` depends on the suite alone, never on the
probabilities, so every uniform keeps its meaning when the configuration changes.

* An attribute's label is found by inverse CDF: outcomes in declared group order, then ``unknown``; the
  label is the first outcome whose cumulative probability exceeds the uniform.
* A term is present when its uniform is below its list's presence probability.

**Coupling.** Because of this, a baseline and a candidate drawn with the same seeds are paired: with
``gender`` declared as ``[female, male]``, a baseline at 50% male labels a seed male when its uniform
is ``>= 0.5``, a candidate at 65% male when it is ``>= 0.35``. The two agree on every seed except those
whose uniform lies in ``[0.35, 0.5)`` (about 15% of them), and those all move from female to male,
never back. A small bias shift therefore shows up as a small paired difference, as it would for a real
model fine-tuned a little, instead of as two independent samples.

**Re-drawn images** (``redraw``, ``redraw_stream``). Real changes do not always keep each image tied to
its seed: a new scheduler, another library version or a retrain gives other images for some or all
seeds. ``redraw: f`` models that: a fraction ``f`` of the seeds draw their uniforms from an independent
stream instead. For a seed, ``rng = np.random.default_rng(np.random.SeedSequence(seed,
spawn_key=(REDRAW_KEY, redraw_stream)))``; the seed is re-drawn when ``rng.random() < f``, and then its
``k`` uniforms are the next ``rng.random(k)`` (otherwise ``default_rng(seed).random(k)`` as above). So:

* ``redraw: 0`` (the default) changes nothing, bit for bit;
* ``redraw: 0.2`` is "an irrelevant change": the same distribution, but about 20% of the seeds show
  another image, independent of the one they showed before (the rest are identical);
* ``redraw: 1`` is "fully independent images" (a retrain, a new base model, an unpaired baseline);
* the choice is reproducible and nested: for one ``redraw_stream`` the seeds re-drawn at 0.1 are among
  those re-drawn at 0.2, with the same new images. Two candidates with different ``redraw_stream``
  (default 1; any integer >= 0) pick their seeds and draw their new images independently of each other.

Which seeds are re-drawn and what they then show depends on the seed, ``redraw`` and ``redraw_stream``
alone, never on the probabilities, so ``with_probabilities`` on a re-drawing model moves labels along
the same coupled uniforms. ``generate``, ``draw`` and ``uniforms`` share one code path per seed.

**Sparse terms.** A small ``presence`` (``presence: 0.01``, or per list in a category, ``presence:
{cultural_markers: 0.01}``) makes each term show in about 1 image in 100: at 15 images per prompt a term
is in no image in 86% of runs, the case where presence rates and CAS have a zero or tiny standard error.

**A value on a bound.** Choose probabilities that put a metric's true value exactly on a policy bound.
The strict-mode parity of ``doctor`` (split ``male`` / ``female``, uniform reference) is ``(p_male -
p_female) / (p_male + p_female)``, ``p_male - p_female`` without ``unknown``: ``{male: 0.75, female:
0.25}`` puts it on a ``max: 0.5`` bound, and so does ``{male: 0.6, female: 0.2, unknown: 0.2}``
(unknowns leave the split); ``male_share``, also over the known labels in strict mode, is then 0.75.

**Mark** (``MARK_GRID`` x ``MARK_GRID`` cells of ``size / 16`` pixels; rows and columns count cells):

* row 0, row 15, column 0, column 15: background margin (light grey ``BACKGROUND``);
* rows 1-4, columns 1-4: the primary attribute's label, a 4x4-cell swatch;
* 2x2-cell swatches for ``also_annotate`` labels at rows 1-2 / 3-4, columns 6-7, 9-10, 12-13 (up to 6);
* row 6, columns 1-14: a barcode of 14 bits from a hash of the category name (dark / light grey), so an
  image read under the wrong category is caught;
* rows 8-14, columns 1-14: one cell per term, lists packed one after another in row-major order (up to
  98 terms); a present term in its list's colour, an absent one in a pale tint of it.

Group ``i`` of an attribute (declared order) is painted ``PALETTE[i]``, ``unknown`` is ``UNKNOWN_COLOUR``;
list ``j`` of the category uses ``PALETTE[j % 16]``. Every other cell is ``BACKGROUND``. Pixels are exact
RGB values, so a PNG round trip keeps the mark; a lossy format (JPEG) or resizing destroys it.

Example:
    >>> from pytest_t2ibias.suites import load_suite
    >>> suite = load_suite("t2i-biasbench")
    >>> gen = SyntheticGenerator.from_probabilities(suite, {"doctor": {"male": 0.7, "female": 0.3}})
    >>> image = gen.generate(["A doctor performing surgery in a hospital."], [42])[0]
    >>> image.size, image.getpixel((0, 0))
    ((64, 64), (240, 240, 240))
    >>> gen.draw("doctor", 42).labels["gender"] in ("male", "female")
    True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pytest_t2ibias._io import clip, load_yaml
from pytest_t2ibias.errors import MarkError as MarkError
from pytest_t2ibias.errors import SyntheticConfigError as SyntheticConfigError
from pytest_t2ibias.generate.base import check_generate_inputs
from pytest_t2ibias.suites.loader import format_validation_error
from pytest_t2ibias.suites.schema import Suite

#: Bumped when the mark layout or the draw order changes: enters the fingerprint (and the scorer id).
MARK_VERSION = 1
#: The spawn key that separates a seed's re-draw stream from its own (see the module docstring).
REDRAW_KEY = 0x52454452  # "REDR"
#: The label of an attribute drawn as "the scorer could not tell" (the same string as ``annotate.captions.UNKNOWN``).
UNKNOWN = "unknown"
#: Cells per side of the mark.
MARK_GRID = 16
DEFAULT_SIZE = 64
DEFAULT_BATCH_SIZE = 64

Colour = tuple[int, int, int]
BACKGROUND: Colour = (240, 240, 240)
UNKNOWN_COLOUR: Colour = (128, 128, 128)
TAG_ON: Colour = (48, 48, 48)
TAG_OFF: Colour = (208, 208, 208)
#: Group colours (and list colours): pairwise distinct, none the unknown grey or the background.
PALETTE: tuple[Colour, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (128, 0, 0),
    (0, 0, 128),
    (0, 128, 128),
    (255, 215, 0),
    (255, 0, 255),
    (50, 205, 50),
    (20, 20, 20),
)

_PRIMARY_BLOCK = (slice(1, 5), slice(1, 5))
_ALSO_BLOCKS = tuple((slice(row, row + 2), slice(col, col + 2)) for row in (1, 3) for col in (6, 9, 12))
_TAG_ROW = 6
_TAG_COLUMNS = range(1, MARK_GRID - 1)
_BIT_ROWS = range(8, MARK_GRID - 1)
_BIT_COLUMNS = range(1, MARK_GRID - 1)
_BIT_CELLS = tuple((row, col) for row in _BIT_ROWS for col in _BIT_COLUMNS)


def _tint(colour: Colour) -> Colour:
    # A pale version of the list colour: an absent term stays visible as part of its list's run.
    r, g, b = ((c + 3 * 255) // 4 for c in colour)
    return (r, g, b)


# ---------------------------------------------------------------------------------------------------------
# Configuration


def _check_probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"a probability must be in [0, 1], got {value!r}")
    return value


Probability = Annotated[float, AfterValidator(_check_probability)]


def _check_fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"the fraction of images re-drawn must be in [0, 1], got {value!r}")
    return value


#: Strict: a number (an integer is fine), never a string or a boolean (``redraw: true`` is ambiguous).
Fraction = Annotated[float, Field(strict=True), AfterValidator(_check_fraction)]


def _check_sums_to_one(value: dict[str, float]) -> dict[str, float]:
    total = math.fsum(value.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"probabilities must sum to 1, got {total:.6g} from {value}")
    return value


Probabilities = Annotated[dict[str, Probability], AfterValidator(_check_sums_to_one)]


class CategoryConfig(BaseModel):
    """What one category's images show.

    ``attribute``: probabilities of the primary attribute's declared groups, optionally ``unknown``
    (default: uniform over the declared groups). ``also_annotate``: the same for each of the category's
    ``also_annotate`` attributes. ``presence``: per term list, the probability of each of its terms
    (default: :attr:`SyntheticConfig.presence`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: Probabilities | None = None
    also_annotate: dict[str, Probabilities] = Field(default_factory=dict)
    presence: dict[str, Probability] = Field(default_factory=dict)


class SyntheticConfig(BaseModel):
    """The synthetic model: per category, the distribution its images are drawn from.

    Example (YAML, for ``synthetic:PATH``)::

        presence: 0.5              # every term of every list not set below
        categories:
          doctor:
            attribute: {male: 0.65, female: 0.35}
            also_annotate:
              skin_tone: {fair: 0.6, medium: 0.3, dark: 0.1}
            presence: {explicit: 0.9, unexpected: 0.05}
          beauty:
            attribute: {white: 0.5, asian: 0.1, black: 0.1, latine: 0.1, mixed: 0.05, unknown: 0.15}
        redraw: 0.2                # optional: about 20% of the seeds show an independent image (default 0)
        redraw_stream: 1           # optional: which independent stream (default 1)

    ``redraw`` and ``redraw_stream`` are described in the module docstring ("Re-drawn images").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    presence: Probability = 0.5
    categories: dict[str, CategoryConfig] = Field(default_factory=dict)
    redraw: Fraction = 0.0
    redraw_stream: Annotated[int, Field(strict=True, ge=0)] = 1


def parse_config(data: Any, source: str = "synthetic config") -> SyntheticConfig:
    """Validate parsed config data; errors name ``source``, the field and the value."""
    if isinstance(data, SyntheticConfig):
        return data
    if not isinstance(data, Mapping):
        raise SyntheticConfigError(f"{source}: a synthetic config must be a mapping, got {type(data).__name__}")
    try:
        return SyntheticConfig.model_validate(dict(data))
    except ValidationError as err:
        raise SyntheticConfigError(format_validation_error(source, err)) from None


def check_config(config: SyntheticConfig, suite: Suite, source: str = "synthetic config") -> None:
    """Check that every category, group, attribute and list the config names exists in ``suite``.

    Raises:
        SyntheticConfigError: naming ``source``, the field (``categories.doctor.attribute``) and the value.
    """
    for cname, cat_config in config.categories.items():
        where = f"{source}: field `categories.{cname}"
        if cname not in suite.categories:
            raise SyntheticConfigError(
                f"{where}`: no category {cname!r} in suite {suite.name!r}; categories: {list(suite.categories)}"
            )
        spec = suite.categories[cname]
        if cat_config.attribute is not None:
            if spec.attribute is None:
                raise SyntheticConfigError(f"{where}.attribute`: category {cname!r} declares no attribute")
            _check_groups(f"{where}.attribute`", spec.attribute, cat_config.attribute, suite)
        for name, probabilities in cat_config.also_annotate.items():
            if name not in spec.also_annotate:
                raise SyntheticConfigError(
                    f"{where}.also_annotate`: {name!r} is not an also_annotate attribute of {cname!r}; "
                    f"also_annotate: {spec.also_annotate}"
                )
            _check_groups(f"{where}.also_annotate.{name}`", name, probabilities, suite)
        lists = spec.list_names()
        for list_name in cat_config.presence:
            if list_name not in lists:
                raise SyntheticConfigError(
                    f"{where}.presence`: {list_name!r} is not a term list of {cname!r}; lists: {lists}"
                )


def _check_groups(where: str, attribute: str, probabilities: Mapping[str, float], suite: Suite) -> None:
    groups = list(suite.attributes[attribute].groups)
    for group in probabilities:
        if group not in groups and group != UNKNOWN:
            raise SyntheticConfigError(
                f"{where}: {group!r} is not a group of attribute {attribute!r}; groups: {groups} (or {UNKNOWN!r})"
            )


def load_config(path: Path) -> SyntheticConfig:
    """A :class:`SyntheticConfig` from a YAML file; errors name the file (an empty file means defaults)."""
    if not path.is_file():
        raise SyntheticConfigError(f"{path}: no such synthetic config file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SyntheticConfigError(f"{path}: cannot read synthetic config file: {clip(str(err))}") from None
    data = load_yaml(text, str(path), SyntheticConfigError)
    return parse_config({} if data is None else data, str(path))


# ---------------------------------------------------------------------------------------------------------
# The mark: layout, painting and reading (shared with the annotator)


@dataclass(frozen=True)
class MarkLayout:
    """Where one category's labels and presence bits sit in the mark, and their colours.

    ``attributes`` is ``(name, outcomes)`` per annotated attribute (primary first); outcomes are the
    declared groups then ``unknown``. ``lists`` is ``(name, terms)`` per term list, in
    ``list_names()`` order; bit ``k`` of the flattened terms sits at ``bit_rows[k], bit_cols[k]``.
    """

    category: str
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    blocks: tuple[tuple[slice, slice], ...]
    lists: tuple[tuple[str, tuple[str, ...]], ...]
    bit_rows: NDArray[np.intp]
    bit_cols: NDArray[np.intp]
    bit_on: NDArray[np.uint8]
    bit_off: NDArray[np.uint8]
    tag: NDArray[np.bool_]
    background: NDArray[np.bool_]

    @property
    def n_terms(self) -> int:
        return len(self.bit_rows)

    def outcome_colours(self, k: int) -> NDArray[np.uint8]:
        """Colours of attribute ``k``'s outcomes, in outcome order (``unknown`` last)."""
        groups = len(self.attributes[k][1]) - 1
        return np.array([*PALETTE[:groups], UNKNOWN_COLOUR], dtype=np.uint8)


def category_tag(category: str) -> NDArray[np.bool_]:
    """The 14 barcode bits of a category: a hash of its name and the mark version."""
    digest = hashlib.sha256(f"synthetic-mark-v{MARK_VERSION}|{category}".encode()).digest()
    bits = int.from_bytes(digest[:2], "big")
    return np.array([(bits >> (15 - i)) & 1 for i in range(len(_TAG_COLUMNS))], dtype=bool)


def mark_layout(suite: Suite, category: str) -> MarkLayout:
    """The mark layout of ``category``.

    Raises:
        ValueError: the category does not fit the mark (more than 16 groups in an attribute, more than 6
            ``also_annotate`` attributes, more than 98 terms in all its lists).
    """
    spec = suite.categories[category]
    names = list(dict.fromkeys(spec.also_annotate))
    if spec.attribute is not None:
        names = [spec.attribute, *(n for n in names if n != spec.attribute)]
    if len(names) - (spec.attribute is not None) > len(_ALSO_BLOCKS):
        raise ValueError(
            f"category {category!r}: the synthetic mark shows at most {len(_ALSO_BLOCKS)} also_annotate "
            f"attributes, got {spec.also_annotate}"
        )
    attributes = []
    for name in names:
        groups = tuple(suite.attributes[name].groups)
        if len(groups) > len(PALETTE):
            raise ValueError(
                f"attribute {name!r}: the synthetic mark shows at most {len(PALETTE)} groups, got {len(groups)}"
            )
        attributes.append((name, (*groups, UNKNOWN)))
    blocks: list[tuple[slice, slice]] = []
    if spec.attribute is not None:
        blocks.append(_PRIMARY_BLOCK)
    blocks += _ALSO_BLOCKS[: len(attributes) - len(blocks)]

    lists = tuple((name, tuple(spec.term_list(name))) for name in spec.list_names())
    n_terms = sum(len(terms) for _, terms in lists)
    if n_terms > len(_BIT_CELLS):
        raise ValueError(
            f"category {category!r}: the synthetic mark holds {len(_BIT_CELLS)} terms, its lists have {n_terms}"
        )
    cells = np.array(_BIT_CELLS[:n_terms], dtype=np.intp).reshape(-1, 2)
    list_index = np.repeat(np.arange(len(lists)), [len(terms) for _, terms in lists]).astype(np.intp)
    palette = np.array(PALETTE, dtype=np.uint8)
    tints = np.array([_tint(c) for c in PALETTE], dtype=np.uint8)

    background = np.ones((MARK_GRID, MARK_GRID), dtype=bool)
    for rows, cols in blocks:
        background[rows, cols] = False
    background[_TAG_ROW, _TAG_COLUMNS.start : _TAG_COLUMNS.stop] = False
    background[cells[:, 0], cells[:, 1]] = False
    return MarkLayout(
        category=category,
        attributes=tuple(attributes),
        blocks=tuple(blocks),
        lists=lists,
        bit_rows=cells[:, 0],
        bit_cols=cells[:, 1],
        bit_on=palette[list_index % len(PALETTE)],
        bit_off=tints[list_index % len(PALETTE)],
        tag=category_tag(category),
        background=background,
    )


def paint_mark(layout: MarkLayout, outcomes: Sequence[int], bits: NDArray[np.bool_], size: int) -> Image.Image:
    """The RGB image showing ``outcomes[k]`` (index into attribute k's outcomes) and the presence ``bits``."""
    cells = np.empty((MARK_GRID, MARK_GRID, 3), dtype=np.uint8)
    cells[...] = BACKGROUND
    for k, (rows, cols) in enumerate(layout.blocks):
        cells[rows, cols] = layout.outcome_colours(k)[outcomes[k]]
    cells[_TAG_ROW, _TAG_COLUMNS.start : _TAG_COLUMNS.stop] = np.where(layout.tag[:, None], TAG_ON, TAG_OFF)
    cells[layout.bit_rows, layout.bit_cols] = np.where(bits[:, None], layout.bit_on, layout.bit_off)
    scale = size // MARK_GRID
    pixels = np.repeat(np.repeat(cells, scale, axis=0), scale, axis=1)
    return Image.fromarray(pixels, mode="RGB")


def read_mark(layout: MarkLayout, image: Image.Image) -> tuple[list[int], NDArray[np.bool_]]:
    """The outcome index of each attribute and the presence bits painted on ``image``.

    Raises:
        MarkError: the image is not an exact synthetic mark of ``layout.category``; the message says
            what is wrong.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    if width != height or width % MARK_GRID or width == 0:
        raise MarkError(f"a synthetic mark is square with a side divisible by {MARK_GRID}, got {width}x{height}")
    pixels = np.asarray(image)
    scale = width // MARK_GRID
    cells = pixels[::scale, ::scale]
    if not np.array_equal(np.repeat(np.repeat(cells, scale, axis=0), scale, axis=1), pixels):
        raise MarkError(
            f"its {scale}x{scale}-pixel cells are not solid colours (a photo, a resized or lossy (JPEG) copy?)"
        )
    if not np.all(cells[layout.background] == BACKGROUND):
        raise MarkError(f"its margin and gaps are not the mark's background {BACKGROUND}")
    tag = cells[_TAG_ROW, _TAG_COLUMNS.start : _TAG_COLUMNS.stop]
    on, off = np.all(tag == TAG_ON, axis=1), np.all(tag == TAG_OFF, axis=1)
    if not np.all(on | off):
        raise MarkError("its category barcode is not made of barcode colours")
    if not np.array_equal(on, layout.tag):
        raise MarkError(f"its category barcode is not that of {layout.category!r}")

    outcomes = []
    for k, (rows, cols) in enumerate(layout.blocks):
        name = layout.attributes[k][0]
        block = cells[rows, cols].reshape(-1, 3)
        if not np.all(block == block[0]):
            raise MarkError(f"the swatch of attribute {name!r} is not one colour")
        match = np.flatnonzero(np.all(layout.outcome_colours(k) == block[0], axis=1))
        if len(match) != 1:
            raise MarkError(f"the swatch of attribute {name!r} has colour {tuple(block[0].tolist())}, no group's")
        outcomes.append(int(match[0]))

    colours = cells[layout.bit_rows, layout.bit_cols]
    bits = np.all(colours == layout.bit_on, axis=1)
    bad = np.flatnonzero(~bits & ~np.all(colours == layout.bit_off, axis=1))
    if len(bad):
        terms = [(name, term) for name, ts in layout.lists for term in ts]
        name, term = terms[bad[0]]
        raise MarkError(f"the cell of term {term!r} of list {name!r} is neither present nor absent colour")
    return outcomes, bits


# ---------------------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class SyntheticDraw:
    """What one image shows: ``labels`` per annotated attribute, ``present`` terms per list (list order)."""

    labels: dict[str, str]
    present: dict[str, list[str]]


@dataclass(frozen=True)
class SyntheticColumns:
    """The ground truth of many images of one category: per attribute the label of each image, per term
    list an (images, terms) presence matrix."""

    labels: dict[str, NDArray[np.str_]]
    present: dict[str, NDArray[np.bool_]]


@dataclass(frozen=True)
class _Model:
    """One category's resolved distribution: a normalised CDF per attribute and a probability per term."""

    layout: MarkLayout
    cdfs: tuple[NDArray[np.float64], ...]
    presence: NDArray[np.float64]
    resolved: dict[str, Any]


def _resolve(suite: Suite, category: str, config: SyntheticConfig) -> _Model:
    layout = mark_layout(suite, category)
    spec = suite.categories[category]
    cat_config = config.categories.get(category, CategoryConfig())
    cdfs = []
    resolved_attributes = []
    for name, outcomes in layout.attributes:
        given = cat_config.attribute if name == spec.attribute else cat_config.also_annotate.get(name)
        if given is None:
            groups = len(outcomes) - 1
            p = np.array([1.0 / groups] * groups + [0.0])
        else:
            p = np.array([given.get(outcome, 0.0) for outcome in outcomes])
        cdf = np.cumsum(p)
        # Dividing by the last entry makes it exactly 1.0, so every uniform in [0, 1) lands on an outcome.
        cdfs.append(cdf / cdf[-1])
        resolved_attributes.append([name, [[o, float(x)] for o, x in zip(outcomes, p, strict=True)]])
    presence = np.concatenate(
        [[cat_config.presence.get(name, config.presence)] * len(terms) for name, terms in layout.lists] or [[]]
    ).astype(np.float64)
    resolved = {
        "prompts": list(spec.prompts),
        "attributes": resolved_attributes,
        "lists": [[name, list(terms), cat_config.presence.get(name, config.presence)] for name, terms in layout.lists],
    }
    return _Model(layout, tuple(cdfs), presence, resolved)


class SyntheticGenerator:
    """A model whose bias is whatever its :class:`SyntheticConfig` says (see the module docstring).

    Args:
        suite: the suite whose prompts, attributes and term lists the images follow.
        config: a :class:`SyntheticConfig` or its mapping form; ``None`` means all defaults (uniform
            labels, every term present with probability 0.5).
        size: side of the square image in pixels, a multiple of 16.
        batch_size: images per ``generate`` call when driven by the generation stage.

    Raises:
        SyntheticConfigError: the config is malformed or names what the suite lacks.
        ValueError: ``size`` is invalid, a prompt belongs to two categories, or a category does not fit
            the mark.

    Example:
        >>> from pytest_t2ibias.suites import load_suite
        >>> suite = load_suite("t2i-biasbench")
        >>> base = SyntheticGenerator(suite, {"categories": {"doctor": {"attribute": {"male": 0.5, "female": 0.5}}}})
        >>> biased = base.with_probabilities("doctor", {"male": 0.65, "female": 0.35})
        >>> base.fingerprint != biased.fingerprint
        True
        >>> changed = [s for s in range(1000) if base.draw("doctor", s) != biased.draw("doctor", s)]
        >>> len(changed), {biased.draw("doctor", s).labels["gender"] for s in changed}
        (156, {'male'})
    """

    def __init__(
        self,
        suite: Suite,
        config: SyntheticConfig | Mapping[str, Any] | None = None,
        *,
        size: int = DEFAULT_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        source: str = "synthetic config",
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < MARK_GRID or size % MARK_GRID:
            raise ValueError(f"`size` must be a positive multiple of {MARK_GRID}, got {size!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}")
        self.suite = suite
        self.config = parse_config({} if config is None else config, source)
        check_config(self.config, suite, source)
        self.size = size
        self.batch_size = batch_size
        self._models = {name: _resolve(suite, name, self.config) for name in suite.categories}
        self._category_of: dict[str, str] = {}
        for name, spec in suite.categories.items():
            for prompt in spec.prompts:
                other = self._category_of.setdefault(prompt, name)
                if other != name:
                    raise ValueError(f"prompt {prompt!r} is in categories {other!r} and {name!r}; it must be in one")
        resolved: dict[str, Any] = {
            "mark": MARK_VERSION,
            "categories": {name: m.resolved for name, m in self._models.items()},
        }
        if self.config.redraw > 0.0:
            # Only when it changes images: a config without `redraw` keeps the fingerprint it always had.
            resolved["redraw"] = [self.config.redraw, self.config.redraw_stream]
        blob = json.dumps(resolved, sort_keys=True)
        # A hash of the *resolved* distributions and the suite structure they draw over: two configs that
        # mean the same share a fingerprint, and an edited term list cannot reuse stale cached images.
        self.fingerprint = "synthetic:" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_probabilities(
        cls,
        suite: Suite,
        probabilities: Mapping[str, Mapping[str, float]],
        presence: float | Mapping[str, Mapping[str, float]] | None = None,
        **kwargs: Any,
    ) -> SyntheticGenerator:
        """A generator from primary-attribute probabilities per category.

        ``presence`` is one probability for every term, or ``{category: {list: probability}}``.

        Example:
            >>> from pytest_t2ibias.suites import load_suite
            >>> gen = SyntheticGenerator.from_probabilities(
            ...     load_suite("t2i-biasbench"), {"doctor": {"male": 0.7, "female": 0.3}}, presence=0.2)
            >>> gen.config.categories["doctor"].attribute
            {'male': 0.7, 'female': 0.3}
        """
        categories: dict[str, dict[str, Any]] = {name: {"attribute": dict(p)} for name, p in probabilities.items()}
        data: dict[str, Any] = {"categories": categories}
        if isinstance(presence, Mapping):
            for name, lists in presence.items():
                categories.setdefault(name, {})["presence"] = dict(lists)
        elif presence is not None:
            data["presence"] = presence
        return cls(suite, data, **kwargs)

    @classmethod
    def from_spec(cls, spec: str, suite: Suite, **kwargs: Any) -> SyntheticGenerator:
        """``synthetic`` (all defaults) or ``synthetic:PATH`` (a YAML :class:`SyntheticConfig`).

        Raises:
            SyntheticConfigError: the file is missing, not YAML, or does not fit the schema or the suite;
                the message names the file.
        """
        if spec == "synthetic":
            return cls(suite, None, **kwargs)
        if not spec.startswith("synthetic:") or not spec.removeprefix("synthetic:"):
            raise ValueError(f"`spec` must be 'synthetic' or 'synthetic:PATH', got {spec!r}")
        path = Path(spec.removeprefix("synthetic:"))
        return cls(suite, load_config(path), source=str(path), **kwargs)

    def with_probabilities(
        self, category: str, probabilities: Mapping[str, float], attribute: str | None = None
    ) -> SyntheticGenerator:
        """A copy with ``category``'s primary attribute (or ``attribute``) drawn from ``probabilities``."""
        data = self.config.model_dump()
        cat = data["categories"].setdefault(category, {})
        spec = self.suite.categories.get(category)
        if attribute is None or (spec is not None and attribute == spec.attribute):
            cat["attribute"] = dict(probabilities)
        else:
            cat.setdefault("also_annotate", {})[attribute] = dict(probabilities)
        return SyntheticGenerator(self.suite, data, size=self.size, batch_size=self.batch_size)

    def with_redraw(self, fraction: float, stream: int = 1) -> SyntheticGenerator:
        """A copy that re-draws about ``fraction`` of its images from the independent stream ``stream``
        (see "Re-drawn images" in the module docstring); the probabilities stay as they are.

        Raises:
            SyntheticConfigError: ``fraction`` is not in [0, 1] or ``stream`` is not an integer >= 0.

        Example:
            >>> from pytest_t2ibias.suites import load_suite
            >>> base = SyntheticGenerator(load_suite("t2i-biasbench"))
            >>> changed = base.with_redraw(0.2)
            >>> moved = (base.uniforms("doctor", range(1000)) != changed.uniforms("doctor", range(1000))).any(axis=1)
            >>> int(moved.sum())
            180
        """
        data = self.config.model_dump()
        data["redraw"], data["redraw_stream"] = fraction, stream
        return SyntheticGenerator(self.suite, data, size=self.size, batch_size=self.batch_size)

    @property
    def params(self) -> dict[str, Any]:
        return {"size": self.size}

    def category_of(self, prompt: str) -> str:
        """The category of a suite prompt (exact text).

        Raises:
            ValueError: the prompt is not in the suite.
        """
        try:
            return self._category_of[prompt]
        except KeyError:
            known = list(self._category_of)
            raise ValueError(
                f"prompt {prompt!r} is not a prompt of suite {self.suite.name!r}; the synthetic model only draws "
                f"suite prompts: {known[:5]}{' ...' if len(known) > 5 else ''}"
            ) from None

    def _seed_uniforms(self, seed: int, k: int) -> NDArray[np.float64]:
        """The ``k`` uniforms of ``seed``'s image: the one place that decides them (module docstring)."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"`seeds` must be non-negative integers, got {seed!r}")
        redraw = self.config.redraw
        if redraw > 0.0:
            key = (REDRAW_KEY, self.config.redraw_stream)
            rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))
            if rng.random() < redraw:
                return rng.random(k)
        return np.random.default_rng(int(seed)).random(k)

    def _draw(self, category: str, seed: int) -> tuple[_Model, list[int], NDArray[np.bool_]]:
        model = self._models[category]
        uniforms = self._seed_uniforms(seed, len(model.cdfs) + model.layout.n_terms)
        outcomes = [int(np.searchsorted(cdf, u, side="right")) for cdf, u in zip(model.cdfs, uniforms, strict=False)]
        bits = uniforms[len(model.cdfs) :] < model.presence
        return model, outcomes, bits

    def draw(self, category: str, seed: int) -> SyntheticDraw:
        """The labels and present terms of the image ``seed`` makes in ``category`` (its ground truth)."""
        if category not in self._models:
            raise ValueError(f"`category` must be one of {list(self._models)}, got {category!r}")
        model, outcomes, bits = self._draw(category, seed)
        labels = {name: names[i] for (name, names), i in zip(model.layout.attributes, outcomes, strict=True)}
        present: dict[str, list[str]] = {}
        start = 0
        for name, terms in model.layout.lists:
            present[name] = [t for t, hit in zip(terms, bits[start : start + len(terms)], strict=True) if hit]
            start += len(terms)
        return SyntheticDraw(labels, present)

    def uniforms(self, category: str, seeds: Sequence[int]) -> NDArray[np.float64]:
        """The uniforms behind each image's draw, one row per seed: ``default_rng(seed).random(k)``, or the
        seed's re-draw stream for the seeds ``redraw`` picks (see the module docstring)."""
        model = self._models[category]
        k = len(model.cdfs) + model.layout.n_terms
        rows = [self._seed_uniforms(seed, k) for seed in seeds]
        return np.stack(rows) if rows else np.zeros((0, k))

    def columns(self, category: str, uniforms: NDArray[np.float64]) -> SyntheticColumns:
        """The ground truth of many images at once, from their :meth:`uniforms` (what :meth:`draw` gives one
        by one): for simulations that need thousands of images and no pixels."""
        model = self._models[category]
        labels = {
            name: np.asarray(names)[np.searchsorted(cdf, uniforms[:, i], side="right")]
            for i, ((name, names), cdf) in enumerate(zip(model.layout.attributes, model.cdfs, strict=True))
        }
        bits = uniforms[:, len(model.cdfs) :] < model.presence
        present: dict[str, NDArray[np.bool_]] = {}
        start = 0
        for name, terms in model.layout.lists:
            present[name] = bits[:, start : start + len(terms)]
            start += len(terms)
        return SyntheticColumns(labels, present)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        check_generate_inputs(prompts, seeds)
        images = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            model, outcomes, bits = self._draw(self.category_of(prompt), seed)
            images.append(paint_mark(model.layout, outcomes, bits, self.size))
        return images
