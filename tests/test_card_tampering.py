"""A scorer card is checked against its own counts when it is read (issue 21, item 7).

Every derived figure (per-class sensitivity and specificity, kappa, per-term precision, recall and
specificity, ``n_images``) is recomputed from the confusion matrix and the term counts; numbers must be
finite and bounded; a depth bomb is refused before parsing. Each refusal is one ``ScorerCardError`` line
naming the file, the field and the value. And a NaN kappa never passes ``min_kappa``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_t2ibias.errors import ScorerCardError, T2IBiasError
from pytest_t2ibias.judge.verdicts import scorer_problem
from pytest_t2ibias.metrics.scorer_card import ScorerCard, build_card, load_card, write_card

HUMAN = ["female"] * 50 + ["male"] * 50
SCORER = ["female"] * 45 + ["male"] * 5 + ["male"] * 49 + ["female"]


def _card() -> ScorerCard:
    return build_card(
        "noisy",
        "h" * 16,
        {"gender": (HUMAN, SCORER)},
        {"doctor": ([True] * 60 + [False] * 40, [True] * 55 + [False] * 40 + [True] * 5)},
        classes={"gender": ["female", "male"]},
    )


def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_card().model_dump_json())
    return data


def _gender(data: dict[str, Any]) -> dict[str, Any]:
    gender: dict[str, Any] = data["attributes"]["gender"]
    return gender


#: (id, how the card's dict is changed, a fragment of the one-line error).
TAMPERED: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    (
        "kappa_raised",
        lambda d: _gender(d)["kappa"].update(value=0.99),
        "field `attributes.gender.kappa.value`: stored 0.99",
    ),
    ("rate_above_1", lambda d: _gender(d)["sensitivity"]["female"].update(value=1.5), "sensitivity.female.value"),
    ("rate_contradicts", lambda d: _gender(d)["sensitivity"]["male"].update(value=0.5), "its counts give 0.98"),
    ("rate_counts", lambda d: _gender(d)["specificity"]["male"].update(successes=40), "specificity.male.successes"),
    ("negative_images", lambda d: d.update(n_images=-5), "field `n_images`"),
    (
        "images_disagree",
        lambda d: d.update(n_images=7),
        "field `n_images`: stored 7, its attributes and terms hold 100",
    ),
    ("huge_count", lambda d: _gender(d).update(confusion=[[10**30, 5], [1, 49]]), "field `attributes.gender.confusion"),
    ("all_zero", lambda d: _gender(d).update(confusion=[[0, 0], [0, 0]]), "holds no image"),
    ("empty_classes", lambda d: _gender(d).update(classes=[], confusion=[]), "field `attributes.gender`"),
    ("negative_count", lambda d: _gender(d).update(confusion=[[45, -5], [1, 49]]), "attributes.gender.confusion"),
    ("term_precision", lambda d: d["terms"]["doctor"]["precision"].update(value=1.0), "terms.doctor.precision.value"),
    ("term_count", lambda d: d["terms"]["doctor"].update(true_positive=56), "terms.doctor.precision"),
    ("kappa_interval", lambda d: _gender(d)["kappa"].update(low=0.95, high=0.99), "does not contain"),
    ("kappa_missing", lambda d: _gender(d)["kappa"].update(value=None), "kappa.value`: stored None"),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "card.json"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ScorerCardError) as info:
        load_card(path)
    message = str(info.value)
    assert isinstance(info.value, T2IBiasError)
    assert len(message.splitlines()) == 1 and message.startswith(f"scorer card {path}: "), message
    return message


@pytest.mark.parametrize(("mutate", "fragment"), [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED])
def test_a_tampered_card_is_refused_naming_the_field(
    tmp_path: Path, mutate: Callable[..., object], fragment: str
) -> None:
    data = _data()
    mutate(data)
    assert fragment in _error(_write(tmp_path, json.dumps(data)))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(math.nan, "NaN is not a number"), (math.inf, "Infinity is not a number"), (-math.inf, "-Infinity is not")],
    ids=["nan", "inf", "minus_inf"],
)
def test_non_finite_numbers_are_refused(tmp_path: Path, value: float, fragment: str) -> None:
    data = _data()
    _gender(data)["kappa"]["value"] = value  # json.dumps writes NaN / Infinity, as Python's json reads them
    assert fragment in _error(_write(tmp_path, json.dumps(data)))


def test_an_integer_of_5000_digits_is_refused(tmp_path: Path) -> None:
    text = json.dumps(_data()).replace('"n_images": 100', '"n_images": 1' + "0" * 5000)
    assert "digits" in _error(_write(tmp_path, text))


def test_a_depth_bomb_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "[" * 100_000 + "]" * 100_000))
    assert "nested 100000 levels deep" in message


def test_an_honest_card_still_loads(tmp_path: Path) -> None:
    card = _card()
    write_card(tmp_path / "card.json", card)
    assert load_card(tmp_path / "card.json") == card
    assert card.attributes["gender"].kappa.value == pytest.approx(0.88)


def test_a_nan_kappa_never_passes_min_kappa() -> None:
    from types import SimpleNamespace

    card = _card()
    gender = card.attributes["gender"]
    nan_kappa = gender.kappa.model_construct(**{**gender.kappa.model_dump(), "value": math.nan})
    bad = card.model_construct(
        **{**dict(card), "attributes": {"gender": gender.model_construct(**{**dict(gender), "kappa": nan_kappa})}}
    )
    data = SimpleNamespace(spec=SimpleNamespace(attribute="gender"))
    result: Any = SimpleNamespace(data=data, scorer_card=bad)
    problem = scorer_problem(result, require_card=True, min_kappa=0.6)
    assert problem is not None and "below the policy's min_kappa 0.6" in problem
    honest: Any = SimpleNamespace(data=data, scorer_card=card)
    assert scorer_problem(honest, require_card=True, min_kappa=0.6) is None


def test_the_plugin_refuses_a_depth_bomb_card_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".json", card="[" * 100_000 + "]" * 100_000)
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--t2i-model=synthetic", "--t2i-scorer-card=card.json"
    )
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "INTERNALERROR" not in text and "RecursionError" not in text
    assert "card.json: nested 100000 levels deep" in text
