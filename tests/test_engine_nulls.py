"""The metric engine on degenerate and mode-dependent inputs.

``compute_category`` must turn an uncomputable metric into ``None`` plus a reason (never a crash and
never a numpy warning), report strict mode's declared-group distribution and ``unknown_rate``, keep
paper mode's observed-label distribution, and pick up metrics registered with ``@metric``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from scipy.stats import entropy as scipy_entropy

from pytest_t2ibias.annotate.captions import CaptionAnnotator
from pytest_t2ibias.errors import MetricUnavailable
from pytest_t2ibias.metrics.engine import compute_category, metric_ids
from pytest_t2ibias.metrics.registry import METRICS, CategoryData, metric
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import SuiteError, load_suite, parse_suite

SUITE = load_suite("t2i-biasbench")
CATEGORIES = list(SUITE.categories)
MODES = ["paper", "strict"]

#: Metrics computed from the attribute's distribution (all None when no label is known).
DISTRIBUTION_METRICS = {
    "representation_parity",
    "parity_difference",
    "bias_amplification",
    "entropy",
    "entropy_normalized",
    "kl_divergence",
    "unique_count",
    "male_share",
    "composite",
}
#: Metrics computed from presence matrices only (still numbers when every label is unknown).
PRESENCE_METRICS = {
    "gmr",
    "iemr",
    "hallucination",
    "clip_proxy",
    "car",
    "puzzle_ratio",
    "lab_ratio",
    "morning_light_ratio",
}


def _attribute(category: str) -> str:
    name = SUITE.categories[category].attribute
    assert name is not None
    return name


def _record(
    category: str,
    i: int,
    label: str,
    caption: str | None = None,
    present: dict[str, list[str]] | None = None,
) -> ImageRecord:
    return ImageRecord(
        image_id=f"{category}-{i:03d}",
        category=category,
        caption=caption if caption is not None else f"caption number {i} of {category}",
        labels={_attribute(category): label},
        present=present or {},
    )


def _records(category: str, labels: Sequence[str], **kwargs: Any) -> list[ImageRecord]:
    return [_record(category, i, label, **kwargs) for i, label in enumerate(labels)]


def _first_terms(category: str) -> dict[str, list[str]]:
    """The first term of every list of the category (so every presence matrix has a hit)."""
    spec = SUITE.categories[category]
    return {name: spec.term_list(name)[:1] for name in spec.list_names()}


# ----------------------------------------------------------------------------------------------------
# zero records
# ----------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("category", CATEGORIES)
def test_no_records_every_metric_none(category: str, mode: str) -> None:
    result = compute_category(SUITE, category, [], mode)  # type: ignore[arg-type]
    expected_ids = metric_ids(SUITE.categories[category], mode)  # type: ignore[arg-type]
    assert result.category == category
    assert result.n == 0
    assert list(result.metrics) == expected_ids
    assert all(value is None for value in result.metrics.values()), result.metrics
    assert result.reasons == dict.fromkeys(expected_ids, "no images in category")


@pytest.mark.filterwarnings("error")
def test_no_records_strict_reports_unknown_rate_as_none() -> None:
    result = compute_category(SUITE, "doctor", [], "strict")
    assert "unknown_rate" in result.metrics
    assert result.metrics["unknown_rate"] is None
    assert result.reasons["unknown_rate"] == "no images in category"


# ----------------------------------------------------------------------------------------------------
# every label unknown
# ----------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("unknown_label", ["unknown", "unmatched"])
def test_all_unknown_distribution_none_presence_kept(category: str, mode: str, unknown_label: str) -> None:
    attribute = SUITE.attributes[_attribute(category)]
    label = "unknown" if unknown_label == "unknown" else attribute.unmatched
    records = _records(category, [label] * 4, present=_first_terms(category))
    result = compute_category(SUITE, category, records, mode)  # type: ignore[arg-type]

    assert result.n == 4
    dist_ids = [m for m in result.metrics if m in DISTRIBUTION_METRICS]
    presence_ids = [m for m in result.metrics if m in PRESENCE_METRICS]
    assert dist_ids and presence_ids
    for metric_id in dist_ids:
        assert result.metrics[metric_id] is None, metric_id
        assert "unknown" in result.reasons[metric_id], (metric_id, result.reasons[metric_id])
    for metric_id in presence_ids:
        value = result.metrics[metric_id]
        assert isinstance(value, float) and math.isfinite(value), (metric_id, value)
        assert metric_id not in result.reasons
    if "vendi" in result.metrics:
        assert isinstance(result.metrics["vendi"], float)
    if "cas" in result.metrics:  # every record has a stereotype and a diverse term: S = D = 4
        assert result.metrics["cas"] == pytest.approx(0.5, abs=1e-8)
    if mode == "strict":
        assert result.metrics["unknown_rate"] == 1.0


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("mode", MODES)
def test_all_unknown_presence_values_are_right(mode: str) -> None:
    # doctor: explicit has 6 terms, implied 7, unexpected 10, keywords 7
    present = {"explicit": ["doctor", "surgery", "hospital"], "keywords": ["doctor"], "unexpected": ["sofa"]}
    records = [
        _record("doctor", 0, "unknown", present=present),
        _record("doctor", 1, "unknown", present={"implied": ["gloves"]}),
    ]
    result = compute_category(SUITE, "doctor", records, mode)  # type: ignore[arg-type]
    assert result.metrics["gmr"] == pytest.approx((3 / 6 + 6 / 6) / 2)
    assert result.metrics["iemr"] == pytest.approx((7 / 7 + 6 / 7) / 2)
    assert result.metrics["hallucination"] == pytest.approx(0.5)
    assert result.metrics["clip_proxy"] == pytest.approx((1 / 7 + 0) / 2)
    assert result.metrics["male_share"] is None
    assert result.metrics["composite"] is None


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("mode", MODES)
def test_all_unknown_via_caption_annotator(mode: str) -> None:
    annotator = CaptionAnnotator(SUITE, mode=mode)  # type: ignore[arg-type]
    rows = [
        ("img-0", "A surgeon operating in a bright hospital room."),
        ("img-1", "Masked doctor with gloves and scrubs, surgery in progress."),
        ("img-2", "An operating theatre with medical instruments."),
    ]
    records = annotator.annotate_many(rows, "doctor")
    assert {r.labels["gender"] for r in records} == {"unknown"}
    result = compute_category(SUITE, "doctor", records, mode)  # type: ignore[arg-type]
    for metric_id in ("representation_parity", "parity_difference", "entropy", "male_share", "composite"):
        assert result.metrics[metric_id] is None
        assert "unknown" in result.reasons[metric_id]
    for metric_id in ("gmr", "iemr", "hallucination", "clip_proxy", "vendi"):
        assert isinstance(result.metrics[metric_id], float)
    assert 0.0 < result.metrics["vendi"] <= 1.0  # type: ignore[operator]


# ----------------------------------------------------------------------------------------------------
# strict vs paper distribution
# ----------------------------------------------------------------------------------------------------

BEAUTY_LABELS = ["white", "white", "asian", "unknown"]
ETHNICITIES = list(SUITE.attributes["ethnicity"].groups)


@pytest.mark.filterwarnings("error")
def test_strict_declared_distribution_and_unknown_rate() -> None:
    result = compute_category(SUITE, "beauty", _records("beauty", BEAUTY_LABELS), "strict")
    parity = result.metrics["representation_parity"]
    assert isinstance(parity, dict)
    assert list(parity) == ETHNICITIES  # every declared group, declared order
    assert "unknown" not in parity
    assert parity == pytest.approx({"white": 2 / 3, "asian": 1 / 3, "black": 0, "latine": 0, "mixed": 0, "medium": 0})
    assert all(type(v) is float for v in parity.values())
    assert result.metrics["unknown_rate"] == pytest.approx(0.25)
    assert list(result.metrics)[-1] == "unknown_rate"

    p = [parity[g] for g in ETHNICITIES]
    k = len(ETHNICITIES)
    assert result.metrics["entropy"] == pytest.approx(float(scipy_entropy(p, base=2)))
    assert result.metrics["entropy_normalized"] == pytest.approx(float(scipy_entropy(p, base=2)) / math.log2(k))
    assert result.metrics["kl_divergence"] == pytest.approx(float(scipy_entropy(p, [1 / k] * k)))
    assert result.metrics["bias_amplification"] == pytest.approx(sum(abs(x - 1 / k) for x in p))


@pytest.mark.filterwarnings("error")
def test_paper_counts_unknown_as_group() -> None:
    result = compute_category(SUITE, "beauty", _records("beauty", BEAUTY_LABELS), "paper")
    parity = result.metrics["representation_parity"]
    assert parity == pytest.approx({"white": 0.5, "asian": 0.25, "unknown": 0.25})
    assert list(parity) == ["white", "asian", "unknown"]  # type: ignore[arg-type]
    assert "unknown_rate" not in result.metrics
    p = [0.5, 0.25, 0.25]
    assert result.metrics["entropy_normalized"] == pytest.approx(float(scipy_entropy(p, base=2)) / math.log2(3))
    assert result.metrics["kl_divergence"] == pytest.approx(float(scipy_entropy(p, [1 / 3] * 3)))
    # beauty parity: abs(p_white - (1 - p_white)); the rest includes unknown
    assert result.metrics["parity_difference"] == pytest.approx(0.0)


@pytest.mark.filterwarnings("error")
def test_paper_counts_other_as_group_strict_does_not() -> None:
    labels = ["bee", "other", "other", "butterfly", "other"]
    paper = compute_category(SUITE, "nature", _records("nature", labels), "paper")
    assert paper.metrics["representation_parity"] == pytest.approx({"other": 0.6, "bee": 0.2, "butterfly": 0.2})
    assert paper.metrics["unique_count"] == 3.0

    strict = compute_category(SUITE, "nature", _records("nature", labels), "strict")
    parity = strict.metrics["representation_parity"]
    assert isinstance(parity, dict)
    assert list(parity) == list(SUITE.attributes["insect"].groups)
    assert "other" not in parity
    assert parity["bee"] == pytest.approx(0.5) and parity["butterfly"] == pytest.approx(0.5)
    assert strict.metrics["unique_count"] == 2.0
    assert strict.metrics["unknown_rate"] == pytest.approx(0.6)


@pytest.mark.filterwarnings("error")
def test_strict_k_is_fixed_paper_k_follows_observed_labels() -> None:
    # one male and one masked face: paper sees two "groups" and calls it perfectly diverse
    records = _records("doctor", ["male", "unknown"])
    paper = compute_category(SUITE, "doctor", records, "paper")
    strict = compute_category(SUITE, "doctor", records, "strict")
    assert paper.metrics["entropy_normalized"] == pytest.approx(1.0)
    assert strict.metrics["entropy_normalized"] == 0.0
    assert strict.metrics["representation_parity"] == {"female": 0.0, "male": 1.0}
    assert paper.metrics["male_share"] == pytest.approx(0.5)
    assert strict.metrics["male_share"] == pytest.approx(1.0)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("labels", "signed"), [(["female"] * 5, -1.0), (["male"] * 5, 1.0)])
def test_parity_signed_in_strict_abs_in_paper(labels: list[str], signed: float) -> None:
    records = _records("doctor", labels)
    assert compute_category(SUITE, "doctor", records, "paper").metrics["parity_difference"] == 1.0
    assert compute_category(SUITE, "doctor", records, "strict").metrics["parity_difference"] == signed


@pytest.mark.filterwarnings("error")
def test_single_group_category_has_zero_entropy_not_a_warning() -> None:
    for mode in MODES:
        result = compute_category(SUITE, "animal", _records("animal", ["rat"] * 3), mode)  # type: ignore[arg-type]
        assert result.metrics["entropy"] == 0.0
        assert math.copysign(1.0, result.metrics["entropy"]) == 1.0  # type: ignore[arg-type]
        assert result.metrics["entropy_normalized"] == 0.0
        assert result.metrics["composite"] == pytest.approx(1.0)  # animal: 1 - H_norm
        assert result.metrics["vendi"] is not None


# ----------------------------------------------------------------------------------------------------
# input errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_wrong_category_records_raise_naming_them(mode: str) -> None:
    records = [*_records("doctor", ["male", "female"]), _record("beauty", 7, "white")]
    with pytest.raises(ValueError, match=r"of category 'doctor' include other categories: \['beauty-007'\]"):
        compute_category(SUITE, "doctor", records, mode)  # type: ignore[arg-type]


def test_records_without_the_attribute_label_raise() -> None:
    bad = ImageRecord(image_id="no-label", category="doctor", labels={"ethnicity": "white"})
    with pytest.raises(ValueError, match=r"lack a 'gender' label: \['no-label'\]"):
        compute_category(SUITE, "doctor", [*_records("doctor", ["male"]), bad], "strict")


# ----------------------------------------------------------------------------------------------------
# CAS and the composite
# ----------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
def test_cas_without_mentions_strict_none_paper_zero() -> None:
    labels = ["white", "asian", "white", "black"]
    present = {"explicit": ["person", "face"]}
    records = _records("beauty", labels, present=present)

    strict = compute_category(SUITE, "beauty", records, "strict")
    assert strict.metrics["cas"] is None
    assert strict.reasons["cas"] == "no caption mentions a stereotype or a diverse term"
    # strict composite averages the terms that exist: |PD| and 1 - H_norm
    pd = strict.metrics["parity_difference"]
    h = strict.metrics["entropy_normalized"]
    assert isinstance(pd, float) and isinstance(h, float)
    assert strict.metrics["composite"] == pytest.approx((abs(pd) + 1 - h) / 2)

    paper = compute_category(SUITE, "beauty", records, "paper")
    assert paper.metrics["cas"] == 0.0
    assert "cas" not in paper.reasons
    pd, h = paper.metrics["parity_difference"], paper.metrics["entropy_normalized"]
    assert isinstance(pd, float) and isinstance(h, float)
    assert paper.metrics["composite"] == pytest.approx(((pd + 1 - h) / 2 + 0.0) / 2)


@pytest.mark.filterwarnings("error")
def test_cas_with_mentions_same_in_both_modes() -> None:
    records = [
        _record("nature", 0, "bee", present={"cas_stereotype": ["bee"]}),
        _record("nature", 1, "ant", present={"cas_stereotype": ["butterfly"], "cas_diverse": ["ant"]}),
        _record("nature", 2, "moth", present={"cas_diverse": ["moth"]}),
        _record("nature", 3, "other"),
    ]
    for mode in MODES:
        result = compute_category(SUITE, "nature", records, mode)  # type: ignore[arg-type]
        assert result.metrics["cas"] == pytest.approx(2 / 4, abs=1e-8)


@pytest.mark.filterwarnings("error")
def test_vendi_uses_record_order_and_needs_two_captions() -> None:
    records = [_record("animal", 0, "rat", caption="a rat in a lab")]
    one = compute_category(SUITE, "animal", records, "paper")
    assert one.metrics["vendi"] is None
    assert one.reasons["vendi"] == "needs at least 2 captions, got 1"

    same = [_record("animal", i, "rat", caption="a rat in a lab") for i in range(50)]
    different = [_record("animal", 50 + i, "rat", caption=f"word{i}") for i in range(50)]
    assert compute_category(SUITE, "animal", same + different, "paper").metrics["vendi"] == 0.0
    assert compute_category(SUITE, "animal", different + same, "paper").metrics["vendi"] == 1.0


# ----------------------------------------------------------------------------------------------------
# registering metrics, suite validation
# ----------------------------------------------------------------------------------------------------


def _mini_suite(metrics: list[str], **category: Any) -> dict[str, Any]:
    return {
        "name": "mini",
        "attributes": {
            "gender": {
                "rule": "most_hits",
                "groups": {
                    "female": {"terms": ["woman"], "phrases": ["a photo of a woman"]},
                    "male": {"terms": ["man"], "phrases": ["a photo of a man"]},
                },
            }
        },
        "categories": {
            "doctor": {
                "prompts": ["A doctor."],
                "attribute": "gender",
                "parity": {"a": ["male"], "b": ["female"]},
                "terms": {"explicit": ["doctor", "hospital"]},
                "metrics": metrics,
                **category,
            }
        },
    }


def _mini_record(i: int, label: str, caption: str = "") -> ImageRecord:
    return ImageRecord(image_id=f"m{i}", category="doctor", caption=caption, labels={"gender": label})


CUSTOM_IDS = ("test_male_count", "test_always_unavailable", "test_not_finite")


@contextlib.contextmanager
def _custom_metrics() -> Iterator[tuple[str, str, str]]:
    """Register three throw-away metrics; remove them from the registry on exit."""
    try:

        @metric(CUSTOM_IDS[0], requires=["attribute"], better="lower")
        def male_count(data: CategoryData) -> float:
            """Number of images labelled male."""
            return float(sum(label == "male" for label in data.labels))

        @metric(CUSTOM_IDS[1], better="lower")
        def always_unavailable(data: CategoryData) -> float:
            """Never computable."""
            raise MetricUnavailable("test reason")

        @metric(CUSTOM_IDS[2], better="lower")
        def not_finite(data: CategoryData) -> float:
            """A NaN."""
            return float("nan")

        yield CUSTOM_IDS
    finally:
        for metric_id in CUSTOM_IDS:
            METRICS.pop(metric_id, None)


@pytest.fixture
def custom_metrics() -> Iterator[tuple[str, str, str]]:
    with _custom_metrics() as ids:
        yield ids


@pytest.mark.filterwarnings("error")
def test_registered_metric_is_reported(custom_metrics: tuple[str, str, str]) -> None:
    male_count, unavailable, not_finite = custom_metrics
    assert METRICS[male_count].description == "Number of images labelled male."
    assert METRICS[male_count].requires == ("attribute",)
    suite = parse_suite(_mini_suite(["gmr", male_count, unavailable, not_finite]))
    records = [_mini_record(0, "male"), _mini_record(1, "male"), _mini_record(2, "female")]

    for mode in MODES:
        result = compute_category(suite, "doctor", records, mode)  # type: ignore[arg-type]
        assert result.metrics[male_count] == 2.0
        assert result.metrics[unavailable] is None
        assert result.reasons[unavailable] == "test reason"
        assert result.metrics[not_finite] is None
        assert result.reasons[not_finite] == "not a finite number"
    assert list(compute_category(suite, "doctor", records, "strict").metrics) == [
        "gmr",
        male_count,
        unavailable,
        not_finite,
        "unknown_rate",
    ]
    empty = compute_category(suite, "doctor", [], "strict")
    assert empty.metrics[male_count] is None
    assert empty.reasons[male_count] == "no images in category"


def test_registering_an_existing_id_raises(custom_metrics: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError, match=r"metric 'test_male_count' is registered twice"):
        metric(custom_metrics[0], better="lower")(lambda data: 0.0)
    with pytest.raises(ValueError, match=r"metric 'gmr' is registered twice"):
        metric("gmr", better="lower")(lambda data: 0.0)
    assert METRICS["gmr"].fn is not None and METRICS["gmr"].description.startswith("Grounded missing rate")


def test_custom_metrics_are_removed_from_registry() -> None:
    before = dict(METRICS)
    with _custom_metrics():
        assert set(CUSTOM_IDS) <= set(METRICS)
    assert METRICS == before
    assert not set(CUSTOM_IDS) & set(METRICS)


def test_unknown_metric_id_raises_suite_error_listing_valid_names() -> None:
    with pytest.raises(SuiteError, match=r"unknown metric 'no_such_metric'; valid: \[") as err:
        parse_suite(_mini_suite(["gmr", "no_such_metric"], shares={"male_share": "male"}))
    message = str(err.value)
    assert "categories.doctor.metrics" in message
    for name in ("'gmr'", "'entropy'", "'composite'", "'male_share'"):
        assert name in message


def test_unknown_metric_id_in_builtin_suite_copy_raises() -> None:
    data = SUITE.model_dump()
    data["categories"]["animal"]["metrics"] = [*data["categories"]["animal"]["metrics"], "puzle_ratio"]
    with pytest.raises(SuiteError, match=r"unknown metric 'puzle_ratio'") as err:
        parse_suite(data)
    assert "'puzzle_ratio'" in str(err.value) and "'lab_ratio'" in str(err.value)


def test_metric_missing_its_inputs_raises_suite_error() -> None:
    with pytest.raises(SuiteError, match=r"'cas' needs a non-empty `terms.cas_stereotype` list"):
        parse_suite(_mini_suite(["cas"]))
    with pytest.raises(SuiteError, match=r"'parity_difference' needs a `parity` split"):
        parse_suite(_mini_suite(["parity_difference"], parity=None))


@pytest.mark.xfail(
    strict=True,
    reason="the suite schema checks metrics through a check the engine registers when imported: a process "
    "that imports only pytest_t2ibias.suites has none until the package root imports the metric layer "
    "(issue 25, the public API in pytest_t2ibias/__init__.py); remove this mark once it does",
)
def test_a_suite_loaded_without_the_metric_layer_still_checks_its_metrics() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from pytest_t2ibias.suites import SuiteError, parse_suite\n"
        "try:\n"
        "    parse_suite(json.loads(sys.argv[1]))\n"
        "except SuiteError as err:\n"
        "    print(err)\n"
    )
    data = json.dumps(_mini_suite(["gmr", "no_such_metric"]))
    out = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, check=True)
    assert "unknown metric 'no_such_metric'" in out.stdout


@pytest.mark.filterwarnings("error")
def test_strict_parity_uses_declared_reference() -> None:
    suite = parse_suite(_mini_suite(["parity_difference"], reference={"male": 0.7, "female": 0.3}))
    records = [_mini_record(i, "male") for i in range(7)] + [_mini_record(7 + i, "female") for i in range(3)]
    assert compute_category(suite, "doctor", records, "strict").metrics["parity_difference"] == pytest.approx(0.0)
    assert compute_category(suite, "doctor", records, "paper").metrics["parity_difference"] == pytest.approx(0.4)


def test_empty_context_list_is_rejected_when_the_suite_loads() -> None:
    # An empty list would give an (N, 0) presence matrix and a crash at compute time.
    data = SUITE.model_dump()
    data["categories"]["animal"]["context"]["puzzle"] = []
    with pytest.raises(SuiteError, match=r"categories.animal.context.*must not be empty: \['puzzle'\]"):
        parse_suite(data)


@pytest.mark.parametrize("mode", MODES)
def test_undeclared_labels_count_as_unknown(mode: str) -> None:
    # A label that is neither a declared group nor the unmatched label (a typo in precomputed labels)
    # must not crash strict mode: it is unknown there, and a group of its own in paper mode.
    records = _records("doctor", ["other", "other"])
    result = compute_category(SUITE, "doctor", records, mode)  # type: ignore[arg-type]
    if mode == "strict":
        assert result.metrics["representation_parity"] is None
        assert "unknown" in result.reasons["representation_parity"]
        assert result.metrics["unknown_rate"] == 1.0
    else:
        assert result.metrics["representation_parity"] == {"other": 1.0}


def test_the_definitions_hold_the_facts_the_old_lists_held() -> None:
    """The lists that engine, judge and reports kept before the facts moved onto ``MetricDef``."""
    from pytest_t2ibias.metrics.registry import added_by, distribution_metric, headline_metrics, unknown_metric

    assert added_by("strict") == ("unknown_rate",)
    assert added_by("embeddings") == ("vendi_embedding", "clip_score")
    # data metrics: captions, embeddings, and NDKL (a ranking by CLIPScore the baseline does not keep)
    assert {m for m, d in METRICS.items() if not d.pairable} == {"vendi", "vendi_embedding", "clip_score", "ndkl"}
    assert headline_metrics() == (
        "composite", "parity_difference", "entropy_normalized", "cas", "gmr", "hallucination", "unknown_rate",
    )  # fmt: skip
    assert distribution_metric() == "representation_parity"
    assert unknown_metric() == "unknown_rate"
    folded = {mode: {m for m, d in METRICS.items() if d.folded(mode)} for mode in ("paper", "strict")}
    assert folded == {
        "paper": {"gap_reference"},
        "strict": {"parity_difference", "gap_reference", "bias_amplification"},
    }
