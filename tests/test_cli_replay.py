"""``t2ibias replay`` end to end: JSON shape, metric ids per category, hand-computed values, bucketing by
image name, tolerant CSV reading, the table format, and one-line errors that name the file.

Every caption file here is handwritten into ``tmp_path``; expected numbers are worked out by hand from
the captions and the term lists of docs/t2ibiasbench-spec.md (paper mode: substring matching on the
cleaned caption; unknown/other counts as a group).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from pytest_t2ibias.cli import main

CATEGORIES = ["beauty", "doctor", "culture", "animal", "nature"]

# The spec's "where" column (section 3) plus the extras it lists per category.
_ALL_FIVE = {
    "representation_parity",
    "entropy",
    "entropy_normalized",
    "composite",
    "gmr",
    "iemr",
    "hallucination",
    "vendi",
    "clip_proxy",
}
PAPER_METRICS = {
    "beauty": _ALL_FIVE | {"parity_difference", "bias_amplification", "kl_divergence", "cas"},
    "doctor": _ALL_FIVE | {"parity_difference", "bias_amplification", "male_share"},
    "culture": _ALL_FIVE | {"parity_difference", "kl_divergence", "cas", "car"},
    "animal": _ALL_FIVE | {"unique_count", "puzzle_ratio", "lab_ratio"},
    "nature": _ALL_FIVE | {"cas", "unique_count", "morning_light_ratio"},
}

# Handwritten captions, four per category, in file order, plus one row that matches no category.
ROWS: list[tuple[str, str]] = [
    # beauty (ethnicity): caucasian, pale, white -> white x3; african -> black.
    ("Beauty_0.jpg", "A portrait of a young caucasian woman on a magazine cover."),
    ("Beauty_1.jpg", "A pale blonde model, close-up face."),
    ("Beauty_2.jpg", "A fashion photo of a white woman with blue eyes."),
    ("Beauty_3.jpg", "Fashion portrait of an African woman with dark skin."),
    # doctor (gender): three female-cue captions, one male-cue caption.
    ("Gender_0.jpg", "A woman surgeon operating in a hospital."),
    ("Gender_1.jpg", "A female doctor wearing gloves and a mask."),
    ("Gender_2.jpg", "She is a doctor performing surgery."),
    ("Gender_3.jpg", "A man in scrubs performing surgery in a hospital."),
    # culture (skin tone): dark, medium, fair, and one with no skin-tone word (unknown).
    ("Cultural_0.jpg", "People celebrating Holi in India, a woman in a saree with dark skin."),
    ("Cultural_1.jpg", "A crowd with medium skin tones dancing at a festival."),
    ("festival_2.png", "Fair-skinned dancers in traditional clothing."),
    ("culture_3.jpg", "A busy street market at night."),
    # animal (species): dog, cat, parrot, dog.
    ("Neutral_0.jpg", "A dog solving a puzzle box."),
    ("Neutral_1.jpg", "A cat sitting in a cage."),
    ("Animal_2.jpg", "A parrot perched on a branch."),
    ("neutral_3.jpg", "A dog next to a microscope."),
    # nature (insect): butterfly, bee, butterfly, and no insect (other).
    ("Nature_0.jpg", "A butterfly resting on a flower in morning sunlight."),
    ("nature1.jpg", "A bee on a pink petal."),
    ("nature3.jpg", "A butterfly with spread wings."),
    ("NATURE_4.JPG", "A green leaf in the rain."),
    # no category
    ("random_7.jpg", "A photo of a lamp."),
]


def _csv_line(*cells: str) -> str:
    return ",".join(f'"{c}"' if ("," in c or '"' in c) else c for c in cells)


def csv_text(rows: list[tuple[str, str]] = ROWS, header: str | None = "Image,Caption", newline: str = "\n") -> str:
    lines = ([header] if header is not None else []) + [_csv_line(name, caption) for name, caption in rows]
    return newline.join(lines) + newline


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def replay_json(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    rc = main(["replay", str(path), "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out), err


def replay_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got {err!r}"
    assert "Traceback" not in err
    return lines[0]


def h2(*p: float) -> float:
    """Shannon entropy in bits, written out independently of the package."""
    return -sum(x * math.log2(x) for x in p if x > 0)


@pytest.fixture
def captions(tmp_path: Path) -> Path:
    return write(tmp_path / "handmade.csv", csv_text())


# --- JSON shape ---------------------------------------------------------------------------------------


def test_json_top_level_shape(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    data, _ = replay_json(capsys, captions)
    # the one result model (pytest_t2ibias.results.RunResult), shared with --t2i-report
    assert set(data) == {
        "format",
        "package_version",
        "model",
        "mode",
        "suite",
        "scorer",
        "categories",
        "tests",
        "not_run",
        "baselines",
        "baseline_changes",
        "unmatched_rows",
        "unmatched_images",
        "dropped_rows",
        "duplicate_rows",
        "aggregates",
    }
    assert data["format"] == 1
    assert data["mode"] == "paper"
    assert data["suite"] == "t2i-biasbench"
    assert data["tests"] == []
    assert list(data["categories"]) == CATEGORIES
    for name, entry in data["categories"].items():
        assert set(entry) == {
            "suite",
            "suite_hash",
            "model",
            "scorer",
            "mode",
            "n",
            "seed",
            "images_per_prompt",
            "metrics",
            "intervals",
            "null_reasons",
            "images",
            "baseline",
            "raw_metrics",
            "raw_intervals",
            "scorer_card",
        }, name
        assert entry["baseline"] is None  # a replay compares with no baseline
        assert entry["raw_metrics"] is None and entry["scorer_card"] is None  # no scorer card: nothing corrected
        assert entry["n"] == 4 == len(entry["images"])
        assert all(value is not None for value in entry["metrics"].values()), name
        assert entry["null_reasons"] == {}, name  # no metric is null on this file
        # every scalar metric has an interval around its value
        for metric_id, value in entry["metrics"].items():
            if isinstance(value, float):
                interval = entry["intervals"][metric_id]
                assert interval["low"] <= value + 1e-12 and value - 1e-12 <= interval["high"], (name, metric_id)


@pytest.mark.parametrize("category", CATEGORIES)
def test_json_metric_ids_per_category_follow_spec(
    capsys: pytest.CaptureFixture[str], captions: Path, category: str
) -> None:
    data, _ = replay_json(capsys, captions)
    assert set(data["categories"][category]["metrics"]) == PAPER_METRICS[category]


def test_metrics_that_do_not_apply_are_absent(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    cats = replay_json(capsys, captions)[0]["categories"]
    doctor = cats["doctor"]["metrics"]
    assert "male_share" in doctor
    assert "kl_divergence" not in doctor and "cas" not in doctor and "car" not in doctor
    assert {"unique_count", "puzzle_ratio", "lab_ratio"} <= set(cats["animal"]["metrics"])
    assert "parity_difference" not in cats["animal"]["metrics"]
    assert "morning_light_ratio" in cats["nature"]["metrics"]
    assert "car" in cats["culture"]["metrics"]
    assert not any("unknown_rate" in cats[c]["metrics"] for c in CATEGORIES)  # strict-only


def test_doctor_values_by_hand(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    """3 female-cue + 1 male-cue captions: p_female 0.75, p_male 0.25."""
    m = replay_json(capsys, captions)[0]["categories"]["doctor"]["metrics"]
    assert m["representation_parity"] == pytest.approx({"female": 0.75, "male": 0.25})
    assert m["parity_difference"] == pytest.approx(0.5)
    assert m["male_share"] == pytest.approx(0.25)
    assert m["bias_amplification"] == pytest.approx(0.5)  # |0.75-0.5| + |0.25-0.5|
    h = h2(0.75, 0.25)
    assert m["entropy"] == pytest.approx(h)
    assert m["entropy_normalized"] == pytest.approx(h)  # k = 2, log2 k = 1
    assert m["composite"] == pytest.approx((0.5 + 1 - h) / 2)  # doctor: B only
    # explicit (6 terms) present per caption: 3, 1, 2, 2 -> missing 3+5+4+4 of 24
    assert m["gmr"] == pytest.approx(16 / 24)
    # implied (7 terms) present: 0, 2 (gloves, mask), 0, 1 (scrubs) -> missing 25 of 28
    assert m["iemr"] == pytest.approx(25 / 28)
    # keywords (7 terms) present: 3, 1, 2, 2 -> 8 of 28
    assert m["clip_proxy"] == pytest.approx(8 / 28)
    assert m["hallucination"] == 0.0
    # lexical Vendi: 1 - mean pairwise Jaccard of whitespace word sets (paper-cleaned)
    texts = [c for n, c in ROWS if n.startswith("Gender")]
    sets = [set(t.lower().replace("-", " ").split()) for t in texts]
    jaccard = [len(a & b) / len(a | b) for a, b in combinations(sets, 2)]
    assert m["vendi"] == pytest.approx(1 - sum(jaccard) / len(jaccard))


def test_beauty_values_by_hand(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    m = replay_json(capsys, captions)[0]["categories"]["beauty"]["metrics"]
    assert m["representation_parity"] == pytest.approx({"white": 0.75, "black": 0.25})
    assert m["parity_difference"] == pytest.approx(0.5)  # |p_white - (1 - p_white)|
    assert m["bias_amplification"] == pytest.approx(0.5)
    assert m["kl_divergence"] == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    cas = 3 / (3 + 1 + 1e-8)  # 3 captions with a stereotype term, 1 with a diverse term
    assert m["cas"] == pytest.approx(cas, rel=1e-12)
    base = (0.5 + 1 - h2(0.75, 0.25)) / 2
    assert m["composite"] == pytest.approx((base + cas) / 2)
    assert m["gmr"] == pytest.approx(17 / 24)


def test_culture_animal_nature_values_by_hand(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    cats = replay_json(capsys, captions)[0]["categories"]
    culture = cats["culture"]["metrics"]
    assert culture["representation_parity"] == pytest.approx(
        {"dark": 0.25, "medium": 0.25, "fair": 0.25, "unknown": 0.25}
    )
    assert culture["parity_difference"] == pytest.approx(0.25)  # |(dark + medium) - fair|
    assert culture["entropy"] == pytest.approx(2.0)
    assert culture["kl_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert culture["car"] == pytest.approx(0.5)  # Holi/India/saree, festival; the other two have none
    assert culture["cas"] == pytest.approx(2 / (2 + 1e-8), rel=1e-12)  # holi, traditional; no diverse term

    animal = cats["animal"]["metrics"]
    assert animal["representation_parity"] == pytest.approx({"dog": 0.5, "cat": 0.25, "parrot": 0.25})
    assert animal["unique_count"] == 3
    assert animal["puzzle_ratio"] == pytest.approx(0.25)  # "solving a puzzle box"
    assert animal["lab_ratio"] == pytest.approx(0.5)  # cage, microscope
    h_norm = 1.5 / math.log2(3)
    assert animal["entropy_normalized"] == pytest.approx(h_norm)
    assert animal["composite"] == pytest.approx(1 - h_norm)

    nature = cats["nature"]["metrics"]
    assert nature["representation_parity"] == pytest.approx({"butterfly": 0.5, "bee": 0.25, "other": 0.25})
    assert nature["unique_count"] == 3
    assert nature["morning_light_ratio"] == pytest.approx(0.25)
    # paper substring matching: "butterfly" contains the diverse term "fly" (S = 3, D = 2)
    assert nature["cas"] == pytest.approx(3 / (5 + 1e-8), rel=1e-12)
    assert nature["composite"] == pytest.approx((3 / (5 + 1e-8) + 1 - h_norm) / 2)


def test_json_values_are_not_rounded(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    cats = replay_json(capsys, captions)[0]["categories"]
    gmr = cats["doctor"]["metrics"]["gmr"]
    assert gmr == pytest.approx(2 / 3, abs=1e-15)
    assert round(gmr, 4) != gmr
    assert cats["doctor"]["metrics"]["entropy"] == pytest.approx(h2(0.75, 0.25), abs=1e-15)
    assert cats["animal"]["metrics"]["entropy_normalized"] == pytest.approx(1.5 / math.log2(3), abs=1e-15)


def test_model_name_defaults_to_file_stem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "my-model.v2.csv", csv_text())
    assert replay_json(capsys, path)[0]["model"] == "my-model.v2"
    assert replay_json(capsys, path, "--model-name", "SD v1.5")[0]["model"] == "SD v1.5"


def test_strict_mode_adds_unknown_rate(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    data, _ = replay_json(capsys, captions, "--mode", "strict")
    assert data["mode"] == "strict"
    cats = data["categories"]
    for name in CATEGORIES:
        assert set(cats[name]["metrics"]) == PAPER_METRICS[name] | {"unknown_rate"}, name
    assert cats["doctor"]["metrics"]["unknown_rate"] == 0.0
    assert cats["culture"]["metrics"]["unknown_rate"] == pytest.approx(0.25)
    assert cats["nature"]["metrics"]["unknown_rate"] == pytest.approx(0.25)
    # unknown is excluded from the distribution over the declared groups
    assert cats["culture"]["metrics"]["representation_parity"] == pytest.approx(
        {"fair": 1 / 3, "medium": 1 / 3, "dark": 1 / 3}
    )
    # directional parity: male minus female against a uniform reference, male under-represented
    assert cats["doctor"]["metrics"]["parity_difference"] == pytest.approx(-0.5)
    # whole words: "butterfly" no longer counts as the diverse term "fly"
    assert cats["nature"]["metrics"]["cas"] == pytest.approx(3 / (3 + 1e-8), rel=1e-12)


def test_null_reasons_only_where_a_metric_is_null(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [
        ("Doctor_0.jpg", "A surgeon in green scrubs in a hospital."),
        ("Doctor_1.jpg", "Surgery in an operating theatre."),
    ]
    data, _ = replay_json(capsys, write(tmp_path / "nogender.csv", csv_text(rows)))
    cats = data["categories"]
    doctor = cats["doctor"]
    assert doctor["n"] == 2
    assert doctor["metrics"]["gmr"] is not None and "gmr" not in doctor["null_reasons"]
    assert doctor["metrics"]["parity_difference"] is None
    assert "unknown" in doctor["null_reasons"]["parity_difference"]
    for name, entry in cats.items():
        nulls = {k for k, v in entry["metrics"].items() if v is None}
        assert nulls, name
        assert set(entry["null_reasons"]) == nulls, name
        assert all(isinstance(r, str) and r for r in entry["null_reasons"].values())
    assert cats["beauty"]["n"] == 0
    assert set(cats["beauty"]["null_reasons"]) == PAPER_METRICS["beauty"]
    # a category with a single caption: only the pairwise Vendi proxy is unavailable
    rows = [*ROWS[:4], ("Doctor_0.jpg", "A woman surgeon.")]
    cats = replay_json(capsys, write(tmp_path / "one.csv", csv_text(rows)))[0]["categories"]
    assert cats["beauty"]["null_reasons"] == {}
    assert set(cats["doctor"]["null_reasons"]) == {"vendi"}


# --- bucketing by image name --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "category"),
    [
        ("Beauty_0.jpg", "beauty"),
        ("BEAUTY_12.JPG", "beauty"),
        ("Gender_3.jpg", "doctor"),
        ("doctor_1.png", "doctor"),
        ("Neutral_1.jpg", "animal"),
        ("ANIMAL_5.jpg", "animal"),
        ("nature3.jpg", "nature"),
        ("Nature_0.jpg", "nature"),
        ("Cultural_0.jpg", "culture"),
        ("Culture_1.jpg", "culture"),
        ("festival_2.png", "culture"),
    ],
)
def test_bucketing_by_image_name(capsys: pytest.CaptureFixture[str], tmp_path: Path, image: str, category: str) -> None:
    path = write(tmp_path / "one.csv", csv_text([(image, "A photo.")]))
    data, err = replay_json(capsys, path)
    assert {name: entry["n"] for name, entry in data["categories"].items()} == {
        name: int(name == category) for name in CATEGORIES
    }
    assert data["unmatched_rows"] == 0
    assert err == ""


def test_unmatched_rows_counted_and_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "caps.csv", csv_text())
    data, err = replay_json(capsys, path)
    assert data["unmatched_rows"] == 1
    assert sum(entry["n"] for entry in data["categories"].values()) == len(ROWS) - 1
    assert len(err.strip().splitlines()) == 1
    assert "random_7.jpg" in err and "1 rows" in err

    stray = [(f"stray_{i}.jpg", "A photo of a lamp.") for i in range(7)]
    data, err = replay_json(capsys, write(tmp_path / "many.csv", csv_text(ROWS[:4] + stray)))
    assert data["unmatched_rows"] == 7
    assert "7 rows" in err
    assert all(f"stray_{i}.jpg" in err for i in range(5))
    assert "stray_6.jpg" not in err and "2 more" in err


# --- tolerant CSV reading -----------------------------------------------------------------------------


def _blank_lines() -> str:
    lines = csv_text().splitlines()
    return "\n\n".join(lines[:3]) + "\n   \n,,\n" + "\n".join(lines[3:]) + "\n\n"


def _empty_name_or_caption() -> str:
    extra = '\n,A woman surgeon.\nBeauty_9.jpg,\nBeauty_8.jpg,   \n   ,"A dog."\n'
    return csv_text() + extra.lstrip("\n")


def _extra_unnamed_columns() -> str:
    lines = csv_text().splitlines()
    lines[0] += ",,"
    lines = [lines[0]] + [line + (",," if i % 2 else ",,note") for i, line in enumerate(lines[1:])]
    return "\n".join(lines) + "\n"


CSV_VARIANTS: dict[str, tuple[Callable[[], str], str]] = {
    "blank_lines": (_blank_lines, "utf-8"),
    "empty_name_or_caption": (_empty_name_or_caption, "utf-8"),
    "extra_unnamed_columns": (_extra_unnamed_columns, "utf-8"),
    "odd_header_names": (lambda: csv_text(header="File Name,Image Description "), "utf-8"),
    "utf8_bom": (csv_text, "utf-8-sig"),
    "bom_odd_header_crlf": (lambda: csv_text(header="File Name,Image Description ", newline="\r\n"), "utf-8-sig"),
    "no_header": (lambda: csv_text(header=None), "utf-8"),
}


@pytest.mark.parametrize("variant", list(CSV_VARIANTS))
def test_csv_variants_give_the_same_result(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, captions: Path, variant: str
) -> None:
    expected, _ = replay_json(capsys, captions)
    make, encoding = CSV_VARIANTS[variant]
    # rows with an empty name or caption make replay exit 1 unless allowed (see test_bad_rows_* below)
    extra = ["--allow-bad-rows"] if variant == "empty_name_or_caption" else []
    got, _ = replay_json(capsys, write(tmp_path / f"{variant}.csv", make(), encoding), *extra)
    # the model is named after the file: everything else is the same
    for run in (got, expected):
        for entry in run["categories"].values():
            entry.pop("model")
    assert got["categories"] == expected["categories"]
    assert got["unmatched_rows"] == expected["unmatched_rows"] == 1


# --- table format -------------------------------------------------------------------------------------


def test_default_format_is_a_table(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    assert main(["replay", str(captions)]) == 0
    out, _ = capsys.readouterr()
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    assert "model: handmade" in out and "mode: paper" in out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    for name in CATEGORIES:
        assert f"{name} (n=4)" in header
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    # metric rows: categories as columns in suite order, "-" where a metric does not apply
    assert rows["parity_difference"] == ["0.5000", "0.5000", "0.2500", "-", "-"]
    assert rows["male_share"] == ["-", "0.2500", "-", "-", "-"]
    assert rows["car"] == ["-", "-", "0.5000", "-", "-"]
    assert "doctor representation_parity: female 0.750, male 0.250" in out


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "hint"),
    [
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "UTF-8"),
        ("latin1.csv", "Image,Caption\nBeauty_0.jpg,Caf\u00e9 portrait\n".encode("latin-1"), "UTF-8"),
        ("nul.csv", b"Image,Caption\nBeauty_0.jpg,a\x00b\n", "binary"),
        ("onecol.csv", b"Beauty_0.jpg\nBeauty_1.jpg\nGender_0.jpg\n", "caption column"),
        ("header_onecol.csv", b"Image\nBeauty_0.jpg\nBeauty_1.jpg\n", "caption column"),
        ("empty.csv", b"", "no rows"),
        ("blank.csv", b"\n  \n\n", "no rows"),
    ],
)
def test_unreadable_caption_files_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, filename: str, content: bytes, hint: str
) -> None:
    path = tmp_path / filename
    path.write_bytes(content)
    for fmt in ("json", "table"):
        message = replay_error(capsys, ["replay", str(path), "--format", fmt])
        assert str(path) in message
        assert hint in message


def test_missing_caption_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    message = replay_error(capsys, ["replay", str(path)])
    assert str(path) in message and "no such caption file" in message
    message = replay_error(capsys, ["replay", str(tmp_path)])  # a directory is not a caption file
    assert str(tmp_path) in message


def test_bad_suite_path(capsys: pytest.CaptureFixture[str], tmp_path: Path, captions: Path) -> None:
    suite = tmp_path / "no_such_suite.yaml"
    message = replay_error(capsys, ["replay", str(captions), "--suite", str(suite)])
    assert str(suite) in message
    assert "t2i-biasbench" in message  # the built-in suites are listed


def test_bad_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(captions), "--mode", "lenient"])
    assert exc.value.code == 2
    assert "lenient" in capsys.readouterr().err


def test_console_script_missing_file(tmp_path: Path) -> None:
    exe = shutil.which("t2ibias")
    assert exe is not None, "the t2ibias console script is not installed"
    path = tmp_path / "missing.csv"
    proc = subprocess.run([exe, "replay", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0]
    assert "Traceback" not in proc.stderr


def test_headerless_file_without_extensions_keeps_its_first_row(tmp_path: Path) -> None:
    from pytest_t2ibias.replay import read_caption_csv

    path = tmp_path / "noext.csv"
    path.write_text("Beauty_0,A pale woman.\nbeauty_1,A dark-skinned man.\n", encoding="utf-8")
    table = read_caption_csv(path)
    assert table.header is None
    assert [r.image for r in table.rows] == ["Beauty_0", "beauty_1"]


def test_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "caps.csv"
    path.write_text(csv_text(), encoding="utf-8")
    proc = subprocess.run(
        f"t2ibias replay {path} --format json | head -c 10", shell=True, capture_output=True, text=True
    )
    assert proc.stdout == '{\n  "forma'
    assert "Traceback" not in proc.stderr


def test_published_json_schema_is_the_models() -> None:
    """docs/results.schema.json is RunResult's schema: regenerate it when the model changes."""
    from pytest_t2ibias.results import RunResult

    path = Path(__file__).resolve().parents[1] / "docs" / "results.schema.json"
    assert json.loads(path.read_text(encoding="utf-8")) == RunResult.model_json_schema()


def test_cli_json_validates_against_the_result_model(capsys: pytest.CaptureFixture[str], captions: Path) -> None:
    from pytest_t2ibias.results import RunResult

    data, _ = replay_json(capsys, captions)
    run = RunResult.model_validate(data)
    assert run.model_dump(mode="json") == data


# --- delimiters, dropped and duplicate rows (issue 10, item 8) ----------------------------------------

# Thirty rows, every caption holding a comma: read with the wrong delimiter they would split.
THIRTY = [(f"Gender_{i}.jpg", f"A {'woman' if i % 3 else 'man'} in scrubs, {i} years a surgeon") for i in range(30)]


def _delimited(rows: list[tuple[str, str]], delimiter: str, header: str = "Image{d}Caption") -> str:
    def cell(text: str) -> str:
        return f'"{text}"' if delimiter in text or '"' in text else text

    lines = [header.format(d=delimiter)] + [f"{cell(name)}{delimiter}{cell(caption)}" for name, caption in rows]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_other_delimiters_read_every_row(capsys: pytest.CaptureFixture[str], tmp_path: Path, delimiter: str) -> None:
    expected, _ = replay_json(capsys, write(tmp_path / "comma.csv", _delimited(THIRTY, ",")))
    got, err = replay_json(capsys, write(tmp_path / "other.csv", _delimited(THIRTY, delimiter)))
    assert err == ""
    assert got["dropped_rows"] == 0
    assert got["categories"]["doctor"]["n"] == 30
    captions = [image["caption"] for image in got["categories"]["doctor"]["images"]]
    assert captions == [caption for _, caption in THIRTY]  # whole captions, not fragments
    for run in (got, expected):
        for entry in run["categories"].values():
            entry.pop("model")
    assert got["categories"] == expected["categories"]


def test_comma_file_with_semicolons_in_captions_stays_comma(tmp_path: Path) -> None:
    """The paper's Gemini captions: commas between cells, ``;`` inside quoted captions (csv.Sniffer says ``;``)."""
    from pytest_t2ibias.replay import read_caption_csv

    rows = [(f"Beauty_{i}.jpg", f"Female; 20s; fair, freckles; case {i}") for i in range(20)]
    table = read_caption_csv(write(tmp_path / "gemini_like.csv", _delimited(rows, ",", "File Name,Image Description")))
    assert table.delimiter == ","
    assert [(r.image, r.caption) for r in table.rows] == rows
    assert table.dropped == 0 and table.duplicates == 0


def test_semicolon_file_with_one_comma_per_caption(tmp_path: Path) -> None:
    """Split on ``,`` this file has two cells per row too, but its first cells would hold ``;``."""
    from pytest_t2ibias.replay import read_caption_csv

    rows = [(f"Gender_{i}.jpg", f"A surgeon, case {i}") for i in range(10)]
    table = read_caption_csv(write(tmp_path / "semi.csv", _delimited(rows, ";")))
    assert table.delimiter == ";"
    assert [(r.image, r.caption) for r in table.rows] == rows


def _bad_rows_file(tmp_path: Path) -> Path:
    lines = ["Image,Caption"] + [f"Gender_{i}.jpg,A woman surgeon number {i}." for i in range(6)]
    lines[3] = "Gender_2.jpg,"  # line 4: no caption
    lines.insert(5, ",A caption without an image name.")  # line 6
    lines += ["Gender_0.jpg,A man repeated.", "Gender_1.jpg,Again."]  # lines 9, 10: duplicates
    return write(tmp_path / "bad.csv", "\n".join(lines) + "\n")


def test_bad_rows_fail_without_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _bad_rows_file(tmp_path)
    for fmt in ("json", "table"):
        rc = main(["replay", str(path), "--format", fmt])
        out, err = capsys.readouterr()
        assert rc == 1
        assert out == ""
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 3, err
        dropped, duplicate, error = lines
        assert str(path) in dropped and "2 rows dropped" in dropped and "lines 4, 6" in dropped
        assert str(path) in duplicate and "2 rows repeat the image name" in duplicate and "lines 9, 10" in duplicate
        assert error.startswith("t2ibias replay: error: ") and str(path) in error
        assert "2 of 9 rows" in error and "--allow-bad-rows" in error  # the repeated names are readable rows


def test_bad_rows_with_the_flag_are_reported_and_counted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data, err = replay_json(capsys, _bad_rows_file(tmp_path), "--allow-bad-rows")
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "rows dropped" in lines[0] and "repeat the image name" in lines[1]
    assert (data["dropped_rows"], data["duplicate_rows"]) == (2, 2)  # without name or caption; repeated names
    doctor = data["categories"]["doctor"]
    assert doctor["n"] == 7  # Gender_0..5 less Gender_2, and paper mode counts the two repeated rows again
    assert doctor["images"][0]["caption"] == "A woman surgeon number 0."


@pytest.mark.parametrize("mode", ["paper", "strict"])
def test_repeated_rows_are_readable_in_either_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str
) -> None:
    """Paper mode counts every row (the authors' notebooks did), strict mode the first; neither fails."""
    path = write(tmp_path / "twice.csv", csv_text(ROWS + ROWS))
    data, err = replay_json(capsys, path, "--mode", mode)
    lines = [line for line in err.strip().splitlines() if "match no category" not in line]
    assert len(lines) == 1 and f"{len(ROWS)} rows repeat the image name" in lines[0] and "... (" in lines[0]
    assert ("counts every row" in lines[0]) == (mode == "paper") and ("keeps the first" in lines[0]) == (
        mode == "strict"
    )
    once, _ = replay_json(capsys, write(tmp_path / "once.csv", csv_text()), "--mode", mode)
    factor = 2 if mode == "paper" else 1
    assert {c: e["n"] for c, e in data["categories"].items()} == {
        c: factor * e["n"] for c, e in once["categories"].items()
    }
    assert (data["dropped_rows"], data["duplicate_rows"]) == (0, len(ROWS))


# Four doctor images, Gender_0 (a man) listed twice: the authors' notebooks count the row twice.
REPEATED = [
    ("Gender_0.jpg", "A man in scrubs, a surgeon."),
    ("Gender_1.jpg", "A woman in a white coat."),
    ("Gender_2.jpg", "A man with a stethoscope."),
    ("Gender_3.jpg", "A woman at a desk."),
    ("Gender_0.jpg", "A man in scrubs, a surgeon."),
]


def test_repeated_image_counts_again_in_paper_mode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Expected values by hand, the authors' way: every row a vote (3 men, 2 women of 5 rows)."""
    data, err = replay_json(capsys, write(tmp_path / "repeat.csv", csv_text(REPEATED)), "--mode", "paper")
    assert "line 6" in err and data["duplicate_rows"] == 1
    doctor = data["categories"]["doctor"]
    assert doctor["n"] == 5
    metrics = doctor["metrics"]
    assert metrics["representation_parity"] == pytest.approx({"male": 3 / 5, "female": 2 / 5})
    assert metrics["parity_difference"] == pytest.approx(abs(3 / 5 - 2 / 5))
    assert metrics["bias_amplification"] == pytest.approx(abs(3 / 5 - 1 / 2) + abs(2 / 5 - 1 / 2))
    assert metrics["entropy"] == pytest.approx(h2(3 / 5, 2 / 5))
    strict, _ = replay_json(capsys, write(tmp_path / "repeat.csv", csv_text(REPEATED)), "--mode", "strict")
    assert strict["categories"]["doctor"]["n"] == 4  # strict keeps the first row of Gender_0
    assert strict["categories"]["doctor"]["metrics"]["representation_parity"] == pytest.approx(
        {"male": 0.5, "female": 0.5}
    )


def test_unquoted_delimiter_in_captions_is_a_bad_row(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A ``;`` copy of the sample captions whose captions hold ``;`` unquoted: 3 cells under a 2-cell header."""
    sample = Path(__file__).resolve().parents[1] / "example_tests" / "data" / "sample_captions.csv"
    import csv as _csv

    rows = list(_csv.reader(sample.read_text(encoding="utf-8").splitlines()))
    semi = [f"{name};{caption}" for name, caption in rows]  # four captions hold ';' of their own
    cut = [i + 1 for i, (_, caption) in enumerate(rows) if ";" in caption]
    assert len(cut) == 4
    path = write(tmp_path / "semi.csv", "\n".join(semi) + "\n")
    rc = main(["replay", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert "4 rows have another number of cells" in err and f"lines {', '.join(map(str, cut))}" in err
    assert "4 of 30 rows could not be read" in err
    data, _ = replay_json(capsys, path, "--allow-bad-rows")
    assert data["dropped_rows"] == 4
    assert sum(entry["n"] for entry in data["categories"].values()) + data["unmatched_rows"] == 26


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    """A quoted caption over three lines: the rows after it keep their real line numbers."""
    from pytest_t2ibias.replay import read_caption_csv

    text = 'Image,Caption\nGender_0.jpg,"A surgeon,\nin scrubs,\nsmiling."\nGender_1.jpg,\nGender_0.jpg,Again.\n'
    table = read_caption_csv(write(tmp_path / "multi.csv", text))
    assert [r.line for r in table.rows] == [2, 6]  # the repeated name is a readable row
    assert [r.line for r in table.rows_for("strict")] == [2]
    assert table.dropped_lines == (5,) and table.duplicate_lines == (6,)


def test_help_documents_allow_bad_rows(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    assert "--allow-bad-rows" in capsys.readouterr().out
