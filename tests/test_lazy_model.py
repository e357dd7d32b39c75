"""The model is built only when an image is missing (issue 26, item 11): a warm rerun reads its images and
records with the model's ``params`` remembered from the run that built it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_t2ibias.errors import SettingsError
from pytest_t2ibias.generate.objects import LazyGenerator
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.suites import load_suite


@pytest.fixture
def memo(tmp_path: Path) -> Path:
    return tmp_path / "generator-params.json"


def _counting(calls: list[int]):  # type: ignore[no-untyped-def]
    suite = load_suite("t2i-biasbench")

    def load() -> SyntheticGenerator:
        calls.append(1)
        return SyntheticGenerator.from_spec("synthetic", suite)

    return load


def test_params_come_from_the_memo_without_building_the_model(memo: Path) -> None:
    calls: list[int] = []
    first = LazyGenerator(_counting(calls), "synthetic:x", memo_key="k", memo_path=memo)
    params, batch = first.params, first.batch_size
    assert calls == [1] and json.loads(memo.read_text())["k"]["batch_size"] == batch
    second = LazyGenerator(_counting(calls), "synthetic:x", memo_key="k", memo_path=memo)
    assert (second.params, second.batch_size, second.loaded) == (json.loads(json.dumps(params)), batch, False)
    assert calls == [1]  # not built again
    other = LazyGenerator(_counting(calls), "synthetic:x", memo_key="other settings", memo_path=memo)
    assert other.params == params and calls == [1, 1]  # another key: built


def test_a_memo_that_is_not_the_models_is_corrected_and_fails_the_run(memo: Path) -> None:
    calls: list[int] = []
    memo.write_text(json.dumps({"k": {"params": {"steps": 999}, "batch_size": 3}}))
    lazy = LazyGenerator(_counting(calls), "synthetic:x", memo_key="k", memo_path=memo)
    assert lazy.params == {"steps": 999}  # believed until the model is built
    with pytest.raises(SettingsError, match=r"remembered settings .* were not the model's"):
        lazy.generate(["a photo of a doctor"], [1])
    assert json.loads(memo.read_text())["k"]["params"] != {"steps": 999}


BROKEN = ["not json", "[]", '{"k": {"params": [], "batch_size": 1}}', '{"k": {"params": {}, "batch_size": true}}']


@pytest.mark.parametrize("content", BROKEN)
def test_a_broken_memo_only_costs_a_build(memo: Path, content: str) -> None:
    calls: list[int] = []
    memo.write_text(content)
    LazyGenerator(_counting(calls), "synthetic:x", memo_key="k", memo_path=memo).params  # noqa: B018
    assert calls == [1]


#: The project's conftest: with REFUSE_BUILD set, building the tiny pipeline fails the run.
REFUSING_CONFTEST = """
import os

if os.environ.get("REFUSE_BUILD"):
    import pytest_t2ibias.annotate.clip_backends as clip
    import pytest_t2ibias.generate.diffusers_adapter as adapter
    import pytest_t2ibias.generate.tiny as tiny

    def refuse():
        raise AssertionError("the tiny pipeline was built on a warm rerun")

    def refuse_scorer():
        raise AssertionError("the tiny CLIP scorer was built on a warm rerun")

    tiny.build_tiny_pipeline = adapter.build_tiny_pipeline = refuse
    clip.build_tiny_open_clip = refuse_scorer
"""


def test_a_warm_rerun_of_the_tiny_model_builds_no_pipeline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example shape (tiny model, tiny scorer): the second run reads every image and record
    from the cache; building the pipeline or the scorer then fails the test, so a pass proves neither was
    built."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(pytester.path / "xdg"))
    pytester.makeini("[pytest]\nt2ibias_model = tiny\nt2ibias_scorer = tiny\nt2ibias_images_per_prompt = 2\n")
    pytester.makeconftest(REFUSING_CONFTEST)
    pytester.makepyfile(
        test_bias=textwrap.dedent(
            """
            import pytest

            @pytest.mark.t2ibias(category="doctor")
            def test_doctor(t2ibias_result):
                assert t2ibias_result.n == 2
            """
        )
    )
    args = ("-p", "no:cacheprovider", "--t2i-cache", "cache")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    memo = pytester.path / "xdg" / "pytest-t2ibias"
    assert (memo / "generator-params.json").is_file() and (memo / "scorer-ids.json").is_file()
    monkeypatch.setenv("REFUSE_BUILD", "1")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    (pytester.path / "cache").rename(pytester.path / "cold")  # every image missing: the model is needed
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(errors=1)  # the fixture that evaluates the category could not build the model
    result.stdout.fnmatch_lines(["*the tiny pipeline was built on a warm rerun*"])


def test_the_scorer_id_comes_from_the_memo_without_building_the_scorer(tmp_path: Path) -> None:
    from pytest_t2ibias.annotate.objects import LazyAnnotator
    from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator

    suite = load_suite("t2i-biasbench")
    calls: list[int] = []

    def load() -> SyntheticAnnotator:
        calls.append(1)
        return SyntheticAnnotator(suite)

    memo = tmp_path / "scorer-ids.json"
    first = LazyAnnotator(load, memo_key="k", memo_path=memo)
    scorer_id = first.scorer_id
    assert calls == [1] and json.loads(memo.read_text())["k"]["scorer_id"] == scorer_id
    second = LazyAnnotator(load, memo_key="k", memo_path=memo)
    assert (second.scorer_id, second.loaded, calls) == (scorer_id, False, [1])
    memo.write_text(json.dumps({"k": {"scorer_id": "another scorer", "scoring_batch": None}}))
    wrong = LazyAnnotator(load, memo_key="k", memo_path=memo)
    assert wrong.scorer_id == "another scorer"
    with pytest.raises(SettingsError, match=r"remembered scorer id .* was not the scorer's"):
        wrong.annotate([], "doctor")
    assert json.loads(memo.read_text())["k"]["scorer_id"] == scorer_id  # corrected


def test_no_cuda_device_is_told_without_importing_torch() -> None:
    """A warm run skips its GPU tests on a CPU machine without importing torch (about 2 s): on Linux, no
    NVIDIA device node means no CUDA device."""
    import glob
    import os
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg"):
        pytest.skip("a machine that may have a CUDA device: torch is asked")
    code = (
        "import sys; from pytest_t2ibias.stages import cuda_available; print(cuda_available(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
