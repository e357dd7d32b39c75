"""``t2ibias audit-scorer`` and ``evaluate --scorer-card`` (issue 14, items 3 and 4): the card counts what
the scorer said against the human labels; a bad labels file is one line naming file, line and column; a
card is used only for its own scorer, and then the JSON carries raw and corrected metrics side by side.

The "human" labels of the audit set are the synthetic model's own draws (its ground truth), the scorer the
synthetic scorer with a confusion, so the card's counts are known exactly.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from pytest_t2ibias.annotate.audit import read_audit_labels
from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
from pytest_t2ibias.cli import main
from pytest_t2ibias.errors import LabelsFileError
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.metrics.scorer_card import load_card
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
PROMPT = SUITE.categories["doctor"].prompts[0]
NOISY = {"gender": {"female": {"male": 0.10}, "male": {"female": 0.02}}}
CONFIG = "confusion:\n  gender:\n    female: {male: 0.10}\n    male: {female: 0.02}\n"


def _audit_set(folder: Path, n: int = 120) -> Path:
    """n synthetic doctor images as PNGs, and a CSV with their true gender and 'doctor' presence."""
    folder.mkdir()
    gen = SyntheticGenerator(SUITE)
    seeds = list(range(1000, 1000 + n))
    rows = []
    for seed, image in zip(seeds, gen.generate([PROMPT] * n, seeds), strict=True):
        name = f"img_{seed}.png"
        image.save(folder / name)
        draw = gen.draw("doctor", seed)
        rows.append(
            {
                "path": name,
                "category": "doctor",
                "seed": seed,
                "gender": draw.labels["gender"],
                "term:explicit:doctor": int("doctor" in draw.present["explicit"]),
                "term:scrubs": int("scrubs" in draw.present["implied"]),
            }
        )
    path = folder / "labels.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def noisy_spec(tmp_path: Path) -> str:
    path = tmp_path / "noisy.yaml"
    path.write_text(CONFIG)
    return f"synthetic:{path}"


def test_audit_writes_the_card_the_scorer_earned(
    tmp_path: Path, noisy_spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _audit_set(tmp_path / "audit")
    out = tmp_path / "card.json"
    assert main(["audit-scorer", "--scorer", noisy_spec, "--labels", str(labels), "-o", str(out)]) == 0
    card = load_card(out)
    # the expected confusion, counted independently: the scorer's reading of each image against its draw
    gen = SyntheticGenerator(SUITE)
    seeds = list(range(1000, 1120))
    images = gen.generate([PROMPT] * len(seeds), seeds)
    read = SyntheticAnnotator(SUITE, NOISY).annotate(
        [AnnotationInput(str(s), im, PROMPT, s) for s, im in zip(seeds, images, strict=True)], "doctor"
    )
    classes = ["female", "male"]
    expected = [[0, 0], [0, 0]]
    for seed, record in zip(seeds, read, strict=True):
        expected[classes.index(gen.draw("doctor", seed).labels["gender"])][classes.index(record.labels["gender"])] += 1
    gender = card.attributes["gender"]
    assert gender.classes == classes
    assert gender.confusion == expected
    assert expected[0][1] > 0  # the noisy scorer did misread some women
    assert card.scorer == SyntheticAnnotator(SUITE, NOISY).scorer_id
    assert card.n_images == 120 and len(card.images_hash) == 16
    # presence is read exactly by this scorer: precision and recall 1
    for term in ("explicit:doctor", "scrubs"):
        assert card.terms[term].precision.value == 1.0 and card.terms[term].recall.value == 1.0
    shown = capsys.readouterr().out
    assert "gender: kappa" in shown and "female: sensitivity" in shown and f"wrote {out}" in shown


def test_the_images_hash_follows_the_labels(tmp_path: Path) -> None:
    labels = _audit_set(tmp_path / "audit", n=10)
    out_a, out_b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["audit-scorer", "--scorer", "synthetic", "--labels", str(labels), "-o", str(out_a)]) == 0
    text = labels.read_text().splitlines()
    flipped = text[1].replace(",male,", ",female,") if ",male," in text[1] else text[1].replace(",female,", ",male,")
    labels.write_text("\n".join([text[0], flipped, *text[2:]]) + "\n")
    assert main(["audit-scorer", "--scorer", "synthetic", "--labels", str(labels), "-o", str(out_b)]) == 0
    assert load_card(out_a).images_hash != load_card(out_b).images_hash


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[1].__setitem__(3, "woman"), r"labels.csv:2: column `gender`: 'woman' is not one of"),
        (lambda rows: rows[2].__setitem__(0, "nope.png"), r"labels.csv:3: column `path`: no image file 'nope.png'"),
        (lambda rows: rows[1].__setitem__(4, "yes"), r"labels.csv:2: column `term:explicit:doctor`: must be 0 or 1"),
        (
            lambda rows: rows[0].__setitem__(5, "term:implied:sky"),
            r"labels.csv:2: column `term:implied:sky`: 'sky' is in no term list 'implied' of 'doctor'",
        ),
        (lambda rows: rows[0].__setitem__(3, "gendr"), r"labels.csv: column `gendr` is not an attribute"),
        (lambda rows: rows[1].__setitem__(1, "docter"), r"labels.csv:2: column `category`: no category 'docter'"),
        (lambda rows: rows[1].__setitem__(2, "x"), r"labels.csv:2: column `seed`: not an integer"),
    ],
)
def test_a_bad_labels_file_is_one_line(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    labels = _audit_set(tmp_path / "audit", n=4)
    rows = [line.split(",") for line in labels.read_text().splitlines()]
    edit(rows)
    labels.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(LabelsFileError, match=message):
        read_audit_labels(labels, SUITE)


def test_cli_reports_a_bad_labels_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("image,gender\nx.png,male\n")
    out = tmp_path / "card.json"
    assert main(["audit-scorer", "--scorer", "synthetic", "--labels", str(labels), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("t2ibias audit-scorer: error: ") and "need a `path` column" in err
    assert not out.exists()


def _evaluate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(
        [
            *("evaluate", "--model", "synthetic", "--category", "doctor", "--images-per-prompt", "60"),
            *("--no-cache", "--format", "json", "-q", *args),
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_with_the_card_shows_raw_and_corrected(
    tmp_path: Path, noisy_spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _audit_set(tmp_path / "audit")
    card = tmp_path / "card.json"
    assert main(["audit-scorer", "--scorer", noisy_spec, "--labels", str(labels), "-o", str(card)]) == 0
    capsys.readouterr()
    code, out, err = _evaluate(["--scorer", noisy_spec, "--scorer-card", str(card)], capsys)
    assert code == 0, err
    doctor = json.loads(out)["categories"]["doctor"]
    # the card enters the result's scorer id: a baseline approved with another card, or none, is stale
    assert doctor["scorer"] == f"{doctor['scorer_card']['scorer']}|card:{doctor['scorer_card']['images_hash']}"
    assert doctor["raw_metrics"]["male_share"] != doctor["metrics"]["male_share"]
    assert doctor["intervals"]["male_share"]["method"] == "misclassification-bootstrap+exact"
    # without the card: the raw numbers, nothing corrected
    code, out, _ = _evaluate(["--scorer", noisy_spec], capsys)
    plain = json.loads(out)["categories"]["doctor"]
    assert plain["raw_metrics"] is None
    assert plain["metrics"]["male_share"] == doctor["raw_metrics"]["male_share"]


def test_evaluate_table_shows_raw_beside_corrected(
    tmp_path: Path, noisy_spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _audit_set(tmp_path / "audit")
    card = tmp_path / "card.json"
    assert main(["audit-scorer", "--scorer", noisy_spec, "--labels", str(labels), "-o", str(card)]) == 0
    capsys.readouterr()
    args = ["evaluate", "--model", "synthetic", "--category", "doctor", "--images-per-prompt", "60", "--no-cache"]
    assert main([*args, "-q", "--scorer", noisy_spec, "--scorer-card", str(card)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^male_share\s+0\.\d{4} \(raw 0\.\d{4}\)$", out, re.M), out
    assert re.search(r"^gmr\s+\d\.\d{4}$", out, re.M), out  # presence: not corrected, one value
    assert "doctor: corrected for the scorer's errors with its card (120 audit images; gender kappa 0." in out


def test_evaluate_refuses_another_scorers_card(
    tmp_path: Path, noisy_spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _audit_set(tmp_path / "audit", n=20)
    card = tmp_path / "card.json"
    assert main(["audit-scorer", "--scorer", "synthetic", "--labels", str(labels), "-o", str(card)]) == 0
    capsys.readouterr()
    code, out, err = _evaluate(["--scorer", noisy_spec, "--scorer-card", str(card)], capsys)
    assert code == 1 and out == ""
    assert f"--scorer-card {card}: stale: recorded for scorer 'synthetic-mark-reader:v1'" in err


POLICY_TEST = """
import pytest

from pytest_t2ibias.assertions import assert_policy


@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_policy(t2ibias_result)
"""


def _plugin_project(pytester: pytest.Pytester, policy: str) -> Path:
    (pytester.path / "thresholds").mkdir()
    (pytester.path / "thresholds" / "policy.yaml").write_text(
        "suite: t2i-biasbench\n" + policy + "categories:\n  doctor:\n    male_share: {min: 0.0, max: 1.0}\n"
    )
    pytester.makepyfile(test_bias=POLICY_TEST)
    labels = _audit_set(pytester.path / "audit", n=40)
    return labels


def test_plugin_policy_requires_a_card(pytester: pytest.Pytester) -> None:
    """Without a card a required-card policy leaves the label checks inconclusive (a warning, not a pass);
    with the scorer's own card they pass; a card of another scorer fails the test as stale."""
    labels = _plugin_project(pytester, "require_scorer_card: true\nmin_kappa: 0.6\n")
    common = ["-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-images-per-prompt", "30"]
    common += ["--t2i-cache", "none", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    bare = pytester.runpytest_subprocess(*common)
    assert bare.ret == pytest.ExitCode.OK
    bare.stdout.re_match_lines([r".*WARN .*doctor\.male_share.*inconclusive: no scorer card for attribute 'gender'.*"])

    assert main(["audit-scorer", "--scorer", "synthetic", "--labels", str(labels), "-o", "card.json"]) == 0
    carded = pytester.runpytest_subprocess(*common, "--t2i-scorer-card", "card.json")
    assert carded.ret == pytest.ExitCode.OK
    assert "inconclusive" not in carded.stdout.str()

    noisy = pytester.path / "noisy.yaml"
    noisy.write_text(CONFIG)
    assert main(["audit-scorer", "--scorer", f"synthetic:{noisy}", "--labels", str(labels), "-o", "stale.json"]) == 0
    stale = pytester.runpytest_subprocess(*common, "--t2i-scorer-card", "stale.json")
    assert stale.ret == pytest.ExitCode.TESTS_FAILED
    stale.stdout.re_match_lines(
        [r".*t2ibias: t2ibias_scorer_card .*stale.json: stale: recorded for scorer .*confusion.*"]
    )


def test_plugin_corrupt_card_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=POLICY_TEST)
    (pytester.path / "card.json").write_text('{"format": 1, "scorer": "synthetic-mark-reader:v1"}')
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-scorer-card", "card.json"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([r".*t2ibias: scorer card .*card.json: field `images_hash`: Field required"])
