"""The replay's labeller counts some patterns without running them: it must vote exactly as before."""

from __future__ import annotations

import itertools

from pytest_t2ibias.annotate.captions import CaptionAnnotator, _label_clean, _PaperLabeller
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Attribute
from pytest_t2ibias.text import paper_clean

CAPTIONS = [
    "A woman and a man, the woman smiling; womanhood",
    "Female surgeon, a femalefemale pun, she and her lady",
    "male_nurse maleness: male doctor with a beard and his mustache",
    "Men, women, MEN; he said: he-he",
    "",
    "A cat chasing a rat in a laboratory under light to medium light",
    "Ñandú man; naïve woman; 男 man",
    "gentleman sir boy girl girl girl",
]


def test_labeller_votes_as_the_patterns_do() -> None:
    attribute = Attribute.model_validate(
        {
            "rule": "most_hits",
            "tie": "b",
            "groups": {
                "a": {
                    "terms": ["man"],
                    "phrases": ["a man"],
                    "patterns": [r"\bman\b", "man", "an a", r"\bm\w+", r"(man)+", r"\b_\b"],
                },
                "b": {"terms": ["woman", "girl", "light to"], "phrases": ["a woman"]},
            },
        }
    )
    labeller = _PaperLabeller(attribute)
    for caption in CAPTIONS + [" ".join(p) for p in itertools.permutations(["man", "woman", "girl", "x"], 3)]:
        clean = paper_clean(caption)
        assert labeller(clean) == _label_clean(clean, attribute), caption


def test_annotate_many_equals_annotate_one_by_one() -> None:
    suite = load_suite("t2i-biasbench")
    rows = [(f"doctor_{i}.png", caption) for i, caption in enumerate(CAPTIONS * 2)]
    for mode in ("paper", "strict"):
        annotator = CaptionAnnotator(suite, mode=mode)  # type: ignore[arg-type]
        many = annotator.annotate_many(rows, "doctor")
        assert many == [annotator.annotate(caption, "doctor", image_id) for image_id, caption in rows]
        assert many[0].present is not many[len(CAPTIONS)].present  # a repeated caption's record has its own
