"""A hub model id the hub does not know stops the run at start-up, in one line (issue 26, item 5); a model
that failed to load fails the next test at once instead of loading again."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from pytest_t2ibias._hf import hub_model_problem
from pytest_t2ibias.generate.objects import LazyGenerator
from pytest_t2ibias.registry import hub_model_id


def _raising(error: type[Exception]):  # type: ignore[no-untyped-def]
    """``model_info`` that raises ``error`` (made without the HTTP response its constructor wants, which
    differs between huggingface_hub versions)."""

    def info(*args: object, **kwargs: object) -> None:
        err = error.__new__(error)
        Exception.__init__(err, "the hub's own message")
        raise err

    return info


@pytest.fixture(autouse=True)
def _online_and_empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (RepositoryNotFoundError, "'org/typo' is not on the hub"),
        (GatedRepoError, "'org/typo' is gated on the hub"),
        (RevisionNotFoundError, "'org/typo': the hub has no revision 'v9'"),
    ],
)
def test_the_hub_saying_no_is_one_line(error: type[Exception], says: str) -> None:
    problem = hub_model_problem("org/typo", "v9", info=_raising(error))
    assert problem is not None and says in problem and "the hub's own message" not in problem
    assert "\n" not in problem


def test_no_verdict_without_the_hub_or_with_the_model_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub_model_problem("org/typo", info=_raising(ConnectionError)) is None  # offline: the load decides
    (Path(constants.HF_HUB_CACHE) / "models--org--typo").mkdir(parents=True)
    assert hub_model_problem("org/typo", info=_raising(RepositoryNotFoundError)) is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_model_problem("org/other", info=_raising(RepositoryNotFoundError)) is None


@pytest.mark.parametrize(
    ("spec", "hub"), [("org/name", True), ("tiny", False), ("python:m:f", False), ("./org/name", False)]
)
def test_which_specs_are_hub_ids(spec: str, hub: bool) -> None:
    assert (hub_model_id(spec) == spec) is hub


def test_a_wrong_hub_id_stops_the_run_at_start_up(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub, "model_info", _raising(RepositoryNotFoundError))
    pytester.makeini("[pytest]\nt2ibias_model = org/typo\nt2ibias_scorer = synthetic\n")
    pytester.makepyfile(
        test_bias="""
        import pytest

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            pass

        @pytest.mark.t2ibias(category="beauty")
        def test_beauty(t2ibias_result):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--t2i-cache", "none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "is not on the hub" in line]
    assert len(errors) == 1 and "org/typo" in errors[0]
    assert "the hub's own message" not in result.stderr.str() + result.stdout.str()


def test_a_model_that_failed_to_load_is_not_loaded_again() -> None:
    calls: list[int] = []

    def load() -> LazyGenerator:
        calls.append(1)
        raise ValueError("cannot load hub model 'org/x': offline")

    lazy = LazyGenerator(load, "hub:org/x@main")
    for _ in range(3):
        with pytest.raises(ValueError, match="offline"):
            lazy.generate(["a doctor"], [1])
    assert calls == [1]
