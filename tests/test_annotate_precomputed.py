"""Precomputed (human) labels from CSV and JSON files: round trips, every error, and the metrics they give."""

from __future__ import annotations

import doctest
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pytest_t2ibias.annotate import precomputed
from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.annotate.precomputed import LabelsFileError, PrecomputedLabels
from pytest_t2ibias.metrics import compute_category
from pytest_t2ibias.records import ImageRecord

DOCTOR_PROMPT = "A doctor performing surgery in a hospital."
ANIMAL_PROMPT = "An animal solving a puzzle in a laboratory."

#: Four doctors (3 female, 1 male) and two animals, as the records the files below must give.
EXPECTED = {
    "doctor": [
        ImageRecord(
            image_id="d0",
            category="doctor",
            labels={"gender": "female", "ethnicity": "white"},
            present={
                "explicit": ["doctor", "surgery", "hospital"],
                "implied": ["gloves", "mask"],
                "unexpected": [],
                "keywords": ["doctor", "surgery"],
            },
            seed=0,
            prompt=DOCTOR_PROMPT,
            image_path="images/d0.png",
        ),
        ImageRecord(
            image_id="d1",
            category="doctor",
            labels={"gender": "female", "ethnicity": "unknown"},
            present={"explicit": ["doctor"], "implied": [], "unexpected": ["plant"], "keywords": []},
            seed=1,
            prompt=DOCTOR_PROMPT,
            image_path="images/d1.png",
        ),
        ImageRecord(
            image_id="d2",
            category="doctor",
            labels={"gender": "female"},
            present={"explicit": [], "implied": [], "unexpected": [], "keywords": []},
            seed=2,
            prompt=DOCTOR_PROMPT,
            image_path="images/d2.png",
        ),
        ImageRecord(
            image_id="d3",
            category="doctor",
            labels={"gender": "male", "skin_tone": "fair"},
            present={
                "explicit": ["doctor", "surgeon", "surgery", "hospital", "medical", "operating"],
                "implied": ["gloves"],
                "unexpected": [],
                "keywords": [],
            },
            seed=3,
            prompt=DOCTOR_PROMPT,
            image_path="images/d3.png",
        ),
    ],
    "animal": [
        ImageRecord(
            image_id="a0",
            category="animal",
            labels={"species": "rat"},
            present={
                "explicit": ["animal", "puzzle"],
                "implied": [],
                "unexpected": [],
                "keywords": ["animal"],
                "lab": ["laboratory"],
                "puzzle": ["puzzle", "manipulat*"],
            },
            seed=0,
            prompt=ANIMAL_PROMPT,
            image_path="images/a0.png",
        ),
        ImageRecord(
            image_id="a1",
            category="animal",
            labels={"species": "other"},
            present={"explicit": [], "implied": [], "unexpected": [], "keywords": [], "lab": [], "puzzle": []},
            seed=1,
            prompt=ANIMAL_PROMPT,
            image_path="images/a1.png",
        ),
    ],
}

#: The same labels as a CSV; cells out of order, repeated or padded must still give the records above.
#: Doctor rows leave `species` and the animal's context lists empty; animal rows leave `gender` empty.
CSV_TEXT = """\
image_id,gender,ethnicity,skin_tone,species,explicit,implied,unexpected,keywords,puzzle,lab
d0,female,white,,,hospital|doctor|surgery,gloves|mask,,doctor|surgery,,
d1,female,unknown,,,doctor,,plant,,,
d2, female ,,,,,,,,,
d3,male,,fair,,operating|medical|hospital|surgery|surgeon|doctor|doctor,gloves,,,,
a0,,,,rat,puzzle|animal,,,animal,manipulat*|puzzle,laboratory
a1,,,,other,,,,,,
"""

#: The same labels as JSON (an object keyed by image id, no wrapper).
JSON_DATA: dict[str, Any] = {
    "d0": {
        "labels": {"gender": "female", "ethnicity": "white"},
        "present": {
            "explicit": ["hospital", "doctor", "surgery"],
            "implied": ["gloves", "mask"],
            "unexpected": [],
            "keywords": ["doctor", "surgery"],
        },
    },
    "d1": {
        "labels": {"gender": "female", "ethnicity": "unknown"},
        "present": {"explicit": ["doctor"], "implied": [], "unexpected": ["plant"], "keywords": []},
    },
    "d2": {
        "labels": {"gender": "female"},
        "present": {"explicit": [], "implied": [], "unexpected": [], "keywords": []},
    },
    "d3": {
        "labels": {"gender": "male", "skin_tone": "fair"},
        "present": {
            "explicit": ["operating", "medical", "hospital", "surgery", "surgeon", "doctor"],
            "implied": ["gloves"],
            "unexpected": [],
            "keywords": [],
            "puzzle": [],
        },
    },
    "a0": {
        "labels": {"species": "rat"},
        "present": {
            "explicit": ["puzzle", "animal"],
            "implied": [],
            "unexpected": [],
            "keywords": ["animal"],
            "puzzle": ["manipulat*", "puzzle"],
            "lab": ["laboratory"],
        },
    },
    "a1": {
        "labels": {"species": "other"},
        "present": {"explicit": [], "implied": [], "unexpected": [], "keywords": [], "puzzle": [], "lab": []},
    },
}


def _items(category: str, ids: list[str] | None = None) -> list[AnnotationInput]:
    """The annotator's inputs for the expected records (the image itself is never looked at)."""
    image = Image.new("RGB", (4, 4))
    records = EXPECTED[category]
    if ids is None:
        ids = [r.image_id for r in records]
    by_id = {r.image_id: r for r in records}
    return [
        AnnotationInput(
            image_id=image_id,
            image=image,
            prompt=DOCTOR_PROMPT if category == "doctor" else ANIMAL_PROMPT,
            seed=by_id[image_id].seed if image_id in by_id else None,
            image_path=f"images/{image_id}.png",
        )
        for image_id in ids
    ]


def _write(tmp_path: Path, name: str, content: str | bytes | object) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture(params=["csv", "json"])
def labels_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "csv":
        return _write(tmp_path, "labels.csv", CSV_TEXT)
    return _write(tmp_path, "labels.json", JSON_DATA)


# ---------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("category", ["doctor", "animal"])
def test_round_trip(labels_file: Path, suite, category: str) -> None:  # type: ignore[no-untyped-def]
    annotator = PrecomputedLabels.from_file(labels_file, suite)
    assert annotator.annotate(_items(category), category) == EXPECTED[category]


def test_csv_and_json_agree_and_keep_file_order(tmp_path: Path, suite) -> None:  # type: ignore[no-untyped-def]
    from_csv = PrecomputedLabels.from_file(_write(tmp_path, "l.csv", CSV_TEXT), suite)
    from_json = PrecomputedLabels.from_file(_write(tmp_path, "l.json", JSON_DATA), suite)
    assert from_csv.image_ids == from_json.image_ids == ["d0", "d1", "d2", "d3", "a0", "a1"]
    for category in ("doctor", "animal"):
        assert from_csv.annotate(_items(category), category) == from_json.annotate(_items(category), category)


def test_records_follow_the_items_order_and_subset(labels_file: Path, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = PrecomputedLabels.from_file(labels_file, suite)
    records = annotator.annotate(_items("doctor", ["d3", "d1"]), "doctor")
    assert records == [EXPECTED["doctor"][3], EXPECTED["doctor"][1]]
    assert annotator.annotate([], "doctor") == []


def test_utf8_bom_and_blank_lines_are_accepted(tmp_path: Path, suite) -> None:  # type: ignore[no-untyped-def]
    text = CSV_TEXT.replace("\nd1,", "\n\nd1,")
    path = _write(tmp_path, "excel.csv", b"\xef\xbb\xbf" + text.encode())
    assert PrecomputedLabels.from_file(path, suite).annotate(_items("doctor"), "doctor") == EXPECTED["doctor"]


def test_unknown_is_accepted_for_every_attribute(tmp_path: Path, suite) -> None:  # type: ignore[no-untyped-def]
    text = CSV_TEXT.replace("a1,,,,other,", "a1,,,,unknown,")
    records = PrecomputedLabels.from_file(_write(tmp_path, "l.csv", text), suite).annotate(_items("animal"), "animal")
    assert records[1].labels == {"species": "unknown"}


def test_labels_of_attributes_the_category_does_not_annotate_are_ignored(  # type: ignore[no-untyped-def]
    tmp_path: Path, suite
) -> None:
    # `species` is declared by the suite but not annotated in `doctor`; `gender` not in `animal`.
    text = CSV_TEXT.replace("d2, female ,,,,", "d2, female ,,,rat,").replace("a1,,,,other", "a1,male,,,other")
    annotator = PrecomputedLabels.from_file(_write(tmp_path, "l.csv", text), suite)
    assert annotator.annotate(_items("doctor"), "doctor") == EXPECTED["doctor"]
    assert annotator.annotate(_items("animal"), "animal") == EXPECTED["animal"]


# ---------------------------------------------------------------------------------------------- scorer id


def test_scorer_id_is_file_name_and_content_hash(labels_file: Path, suite) -> None:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(labels_file.read_bytes()).hexdigest()[:12]
    annotator = PrecomputedLabels.from_file(labels_file, suite)
    assert annotator.scorer_id == f"labels:{labels_file.name}#{digest}"
    assert re.fullmatch(r"labels:labels\.(csv|json)#[0-9a-f]{12}", annotator.scorer_id)


def test_scorer_id_changes_with_the_labels(tmp_path: Path, suite) -> None:  # type: ignore[no-untyped-def]
    before = PrecomputedLabels.from_file(_write(tmp_path, "l.csv", CSV_TEXT), suite).scorer_id
    after = PrecomputedLabels.from_file(_write(tmp_path, "l.csv", CSV_TEXT.replace("d3,male", "d3,female")), suite)
    assert after.scorer_id != before


def test_load_annotator_spec(labels_file: Path, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = load_annotator(f"labels:{labels_file}", suite)
    assert isinstance(annotator, PrecomputedLabels)
    assert isinstance(annotator, ImageAnnotator)
    assert annotator.scorer_id == PrecomputedLabels.from_file(labels_file, suite).scorer_id
    assert annotator.annotate(_items("doctor"), "doctor") == EXPECTED["doctor"]


def test_docstring_example() -> None:
    result = doctest.testmod(precomputed, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------------------------------------- load errors

HEADER = "image_id,gender,explicit,implied,unexpected,keywords\n"


def _entry(**labels: str) -> dict[str, object]:
    empty: dict[str, list[str]] = {"explicit": [], "implied": [], "unexpected": [], "keywords": []}
    return {"labels": labels or {"gender": "female"}, "present": empty}


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        pytest.param(
            "l.csv",
            HEADER + "d0,female,,,,\nd1,femal,,,,\n",
            r"l\.csv: line 3 \(image 'd1'\): field `gender`: 'femal' is not a group of attribute 'gender'; "
            r"valid: \['female', 'male', 'unknown'\]",
            id="csv-label-not-a-group",
        ),
        pytest.param(
            "l.json",
            {"d0": _entry(gender="nonbinary")},
            r"l\.json: image 'd0': field `labels\.gender`: 'nonbinary' is not a group of attribute 'gender'; "
            r"valid: \['female', 'male', 'unknown'\]",
            id="json-label-not-a-group",
        ),
        pytest.param(
            "l.csv",
            "image_id,species\na0,cow\n",
            r"l\.csv: line 2 \(image 'a0'\): field `species`: 'cow' is not a group of attribute 'species'; "
            r"valid: \['dog', .*'squirrel', 'unknown', 'other'\]",
            id="csv-species-label-lists-other",
        ),
        pytest.param(
            "l.csv",
            HEADER + "d0,female,doctor|doctr,,,\n",
            r"l\.csv: line 2 \(image 'd0'\): field `explicit`: 'doctr' is not a term of any 'explicit' list "
            r"of suite 't2i-biasbench'; valid: \[.*'doctor'",
            id="csv-term-not-in-any-list",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"gender": "male"}, "present": {"implied": ["scalpel"]}}},
            r"l\.json: image 'd0': field `present\.implied`: 'scalpel' is not a term of any 'implied' list",
            id="json-term-not-in-any-list",
        ),
        pytest.param(
            "l.csv",
            "image_id,gender,hair_colour\nd0,female,red\n",
            r"l\.csv: line 1: field `hair_colour`: not an attribute or term list of suite 't2i-biasbench'; "
            r"attributes: \['ethnicity', 'gender', .*\], lists: \[",
            id="csv-unknown-column",
        ),
        pytest.param(
            "l.json",
            {"d0": _entry(gender="female", hair_colour="red")},
            r"l\.json: image 'd0': field `labels\.hair_colour`: not an attribute of suite 't2i-biasbench'; "
            r"attributes: \['ethnicity', 'gender', 'insect', 'skin_tone', 'species'\]",
            id="json-unknown-attribute",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"gender": "male"}, "present": {"explict": ["doctor"]}}},
            r"l\.json: image 'd0': field `present\.explict`: not a term list of suite 't2i-biasbench'; "
            r"lists: \[.*'explicit'.*'puzzle'",
            id="json-unknown-list",
        ),
        pytest.param(
            "l.csv",
            HEADER + "d0,female,,,,\nd1,male,,,,\nd0,male,,,,\n",
            r"l\.csv: line 4 \(image 'd0'\): field `image_id`: duplicate image id 'd0' \(first on line 2\)",
            id="csv-duplicate-id",
        ),
        pytest.param(
            "l.json",
            '{"d0": {"labels": {"gender": "female"}}, "d0": {"labels": {"gender": "male"}}}',
            r"l\.json: field `image_id`: duplicate image id 'd0'",
            id="json-duplicate-id",
        ),
        pytest.param(
            "l.json",
            '{"d0": {"labels": {"gender": "female", "gender": "male"}}}',
            r"l\.json: image 'd0': field `labels\.gender`: given twice",
            id="json-duplicate-field",
        ),
        pytest.param(
            "l.csv",
            HEADER.encode() + b"d0,female,,,,\nd1,f\xe9minin,,,,\n",
            r"l\.csv: line 3: not UTF-8 text: byte b'\\xe9' at offset 71",
            id="csv-not-utf8",
        ),
        pytest.param(
            "l.json",
            '{\n  "d0": {"labels": {"gender": "female"},}\n}',
            r"l\.json: not valid JSON at line 2, column 41: Expecting property name",
            id="json-malformed",
        ),
        pytest.param(
            "l.json",
            '[{"image_id": "d0"}]',
            r"l\.json: a JSON labels file must be an object keyed by image id, got list",
            id="json-not-an-object",
        ),
        pytest.param(
            "l.json",
            {"d0": ["female"]},
            r"l\.json: image 'd0': must be an object with `labels` and `present`, got \['female'\]",
            id="json-entry-not-an-object",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"gender": 1}}},
            r"l\.json: image 'd0': field `labels\.gender`: Input should be a valid string \(got 1\)",
            id="json-label-not-a-string",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"gender": "male"}, "present": {"explicit": "doctor"}}},
            r"l\.json: image 'd0': field `present\.explicit`: Input should be a valid list \(got 'doctor'\)",
            id="json-terms-not-a-list",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"gender": "male"}, "tags": ["x"]}},
            r"l\.json: image 'd0': field `tags`: Extra inputs are not permitted \(got \['x'\]\)",
            id="json-extra-field",
        ),
        pytest.param(
            "l.csv",
            HEADER + "d0,female,,,\n",
            r"l\.csv: line 2: 5 cells, the header has 6",
            id="csv-short-row",
        ),
        pytest.param(
            "l.csv",
            "id,gender\nd0,female\n",
            r"l\.csv: line 1: field `image_id`: the header must start with it, got \['id'\]",
            id="csv-no-image-id-column",
        ),
        pytest.param(
            "l.csv",
            "image_id,gender,gender\nd0,female,male\n",
            r"l\.csv: line 1: field `gender`: column given twice",
            id="csv-duplicate-column",
        ),
        pytest.param(
            "l.csv",
            HEADER + ",female,,,,\n",
            r"l\.csv: line 2: field `image_id`: empty image id",
            id="csv-empty-id",
        ),
        pytest.param("l.csv", "", r"l\.csv: empty CSV file", id="csv-empty"),
        pytest.param("l.tsv", HEADER, r"l\.tsv: a labels file must end in \.csv or \.json, got '\.tsv'", id="suffix"),
    ],
)
def test_load_errors(tmp_path: Path, suite, name: str, content: str | bytes | object, match: str) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, name, content)
    with pytest.raises(LabelsFileError, match=match) as info:
        PrecomputedLabels.from_file(path, suite)
    assert str(info.value).startswith(str(path))  # the full path, not only the name


def test_missing_file(tmp_path: Path, suite) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nowhere.csv"
    with pytest.raises(LabelsFileError, match=re.escape(f"{path}: no such labels file")):
        PrecomputedLabels.from_file(path, suite)
    with pytest.raises(LabelsFileError, match=r"nowhere\.json: no such labels file"):
        load_annotator(f"labels:{tmp_path / 'nowhere.json'}", suite)


def test_labels_file_error_is_a_value_error() -> None:
    assert issubclass(LabelsFileError, ValueError)


# ---------------------------------------------------------------------------------------------- annotate errors


@pytest.mark.parametrize(
    ("name", "content", "category", "ids", "match"),
    [
        pytest.param(
            "l.csv",
            CSV_TEXT,
            "doctor",
            ["d0", "x1", "d1", "x2"],
            r"l\.csv: no labels for 2 of 4 images of category 'doctor'; first missing image ids: \['x1', 'x2'\]",
            id="missing-ids",
        ),
        pytest.param(
            "l.csv",
            CSV_TEXT,
            "doctor",
            [f"x{i}" for i in range(7)],
            r"no labels for 7 of 7 images .* first missing image ids: \['x0', 'x1', 'x2', 'x3', 'x4'\]$",
            id="missing-ids-shows-five",
        ),
        pytest.param(
            "l.csv",
            CSV_TEXT.replace("d0,female,", "d0,,"),
            "doctor",
            ["d0"],
            r"l\.csv: line 2 \(image 'd0'\): field `gender`: missing; category 'doctor' needs a label for "
            r"attribute 'gender'",
            id="csv-attribute-missing",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"ethnicity": "white"}, "present": JSON_DATA["d0"]["present"]}},
            "doctor",
            ["d0"],
            r"l\.json: image 'd0': field `labels\.gender`: missing; category 'doctor' needs a label",
            id="json-attribute-missing",
        ),
        pytest.param(
            "l.json",
            {"d0": {"labels": {"gender": "male"}, "present": {"explicit": [], "unexpected": [], "keywords": []}}},
            "doctor",
            ["d0"],
            r"l\.json: image 'd0': field `present\.implied`: missing; category 'doctor' declares this term list",
            id="json-list-missing",
        ),
        pytest.param(
            "l.csv",
            "image_id,gender,explicit,unexpected,keywords\nd0,male,,,\n",
            "doctor",
            ["d0"],
            r"l\.csv: line 2 \(image 'd0'\): field `implied`: missing; category 'doctor' declares this term list",
            id="csv-list-column-missing",
        ),
        pytest.param(
            "l.csv",
            CSV_TEXT.replace("d1,female,unknown,,,doctor,", "d1,female,unknown,,,doctor|puzzle,"),
            "doctor",
            ["d1"],
            r"l\.csv: line 3 \(image 'd1'\): field `explicit`: 'puzzle' is not a term of category 'doctor''s "
            r"'explicit' list; valid: \['doctor', 'surgeon', 'surgery', 'hospital', 'medical', 'operating'\]",
            id="csv-term-of-another-category",
        ),
        pytest.param(
            "l.json",
            {"d3": {**JSON_DATA["d3"], "present": {**JSON_DATA["d3"]["present"], "puzzle": ["maze"]}}},
            "doctor",
            ["d3"],
            r"l\.json: image 'd3': field `present\.puzzle`: 'maze' is not a term of category 'doctor', "
            r"which declares no 'puzzle' list",
            id="json-list-the-category-lacks",
        ),
    ],
)
def test_annotate_errors(  # type: ignore[no-untyped-def]
    tmp_path: Path, suite, name: str, content: str | object, category: str, ids: list[str], match: str
) -> None:
    annotator = PrecomputedLabels.from_file(_write(tmp_path, name, content), suite)
    with pytest.raises(LabelsFileError, match=match):
        annotator.annotate(_items(category, ids), category)


def test_annotate_checks_its_inputs(labels_file: Path, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = PrecomputedLabels.from_file(labels_file, suite)
    with pytest.raises(ValueError, match=r"`category` must be one of .* got 'surgeon'"):
        annotator.annotate(_items("doctor"), "surgeon")
    with pytest.raises(ValueError, match=r"`items` have duplicate image ids: \['d0'\]"):
        annotator.annotate(_items("doctor", ["d0", "d0"]), "doctor")


# ---------------------------------------------------------------------------------------------- metrics


def test_metrics_from_a_labels_file(labels_file: Path, suite) -> None:  # type: ignore[no-untyped-def]
    records = load_annotator(f"labels:{labels_file}", suite).annotate(_items("doctor"), "doctor")
    paper = compute_category(suite, "doctor", records, "paper").metrics
    strict = compute_category(suite, "doctor", records, "strict").metrics
    for metrics in (paper, strict):
        assert metrics["representation_parity"] == pytest.approx({"female": 0.75, "male": 0.25})
        assert metrics["male_share"] == pytest.approx(0.25)
        # explicit (6 terms) missing per image: 3/6, 5/6, 6/6, 0/6
        assert metrics["gmr"] == pytest.approx((3 / 6 + 5 / 6 + 6 / 6 + 0 / 6) / 4)
        # implied (7 terms) missing per image: 5/7, 7/7, 7/7, 6/7
        assert metrics["iemr"] == pytest.approx((5 / 7 + 1 + 1 + 6 / 7) / 4)
        assert metrics["hallucination"] == pytest.approx(1 / 4)  # only d1 shows an unexpected term
        assert metrics["clip_proxy"] == pytest.approx((2 / 7) / 4)  # 2 of 7 keywords in d0 only
        assert metrics["vendi"] is None  # no captions behind human labels
    # |p_male - p_female| in paper mode; signed against the 50/50 reference in strict mode
    assert paper["parity_difference"] == pytest.approx(0.5)
    assert strict["parity_difference"] == pytest.approx(-0.5)
    assert strict["unknown_rate"] == 0.0
    assert "vendi_embedding" not in paper and "clip_score" not in paper  # no embeddings from a labels file


def test_metrics_count_other_and_unknown_labels(tmp_path: Path, suite) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, "l.csv", CSV_TEXT)
    records = PrecomputedLabels.from_file(path, suite).annotate(_items("animal"), "animal")
    paper = compute_category(suite, "animal", records, "paper")
    strict = compute_category(suite, "animal", records, "strict")
    assert paper.metrics["representation_parity"] == pytest.approx({"rat": 0.5, "other": 0.5})
    assert paper.metrics["unique_count"] == 2.0
    assert strict.metrics["unknown_rate"] == pytest.approx(0.5)
    assert strict.metrics["puzzle_ratio"] == pytest.approx(0.5)
    assert strict.metrics["lab_ratio"] == pytest.approx(0.5)
