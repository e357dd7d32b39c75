"""The ``t2ibias`` command's surface (issue 12, item 4): ``--version``, the help texts, progress bars per
stage and category on stderr with a closing ``done in`` line, and ``t2ibias report``.

Bars are drawn only on a terminal: the tests hand the command a stderr that says it is one (``Tty``).
The tiny pipeline is built once for the module, as in test_cli_generate.py.
"""

from __future__ import annotations

import doctest
import io
import json
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from annotate_inputs import annotation_items

import pytest_t2ibias
from pytest_t2ibias.cli import main
from pytest_t2ibias.generate.tiny import build_tiny_pipeline
from pytest_t2ibias.suites.schema import Suite

DONE_EVALUATE = re.compile(r"done in \d+\.\d s: (\d+) images: (\d+) generated, (\d+) read from the cache; (\d+) scored")


class Tty(io.StringIO):
    """A stderr that claims to be a terminal, so the command draws its bars into it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def tiny_pipeline() -> Iterator[Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread is faster on a shared 2-core box (see test_generate_tiny.py)
    yield build_tiny_pipeline()
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _offline(tiny_pipeline: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("pytest_t2ibias.generate.diffusers_adapter.build_tiny_pipeline", lambda: tiny_pipeline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.chdir(tmp_path)  # nothing lands in the repository


def run_tty(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` with a terminal on stderr: (status, stdout, stderr)."""
    err = Tty()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", err)
        code = main(list(argv))
    return code, capsys.readouterr().out, err.getvalue()


def last_line(text: str) -> str:
    """The last line as a terminal shows it: after the last carriage return."""
    return text.rstrip("\n").split("\n")[-1].rsplit("\r", 1)[-1]


# -- --version and the help texts ---------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"t2ibias {pytest_t2ibias.__version__}\n"


def test_help_lists_every_command_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("replay", "generate", "evaluate", "report"):
        assert re.search(rf"^    {command} +\w", out, re.MULTILINE), (command, out)
    # the synthetic model is a --model value, not a command: the overview says what it is
    assert re.search(r"^  synthetic\[:CONFIG\.yaml\] +the synthetic model: .*known", out, re.MULTILINE), out
    assert "--scorer synthetic" in out


def test_replay_help_says_paper_mode_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "Replay defaults to paper mode (--mode paper: the paper's definitions, reproducing its published" in text
    assert "pass --mode strict for the fixed definitions" in text
    assert "paper (default)" in text


# -- progress ------------------------------------------------------------------------------------------------

EVALUATE = ["evaluate", "--model", "tiny", "--scorer", "tiny", "--images-per-prompt", "2", "--no-cache"]
CATEGORIES = ["--category", "doctor", "--category", "animal"]


def test_evaluate_draws_a_bar_per_stage_and_category(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_tty(monkeypatch, capsys, *EVALUATE, *CATEGORIES, "--format", "json")
    assert code == 0, err
    result = json.loads(out)  # stdout is the JSON alone, bars or not
    assert set(result["categories"]) == {"doctor", "animal"}
    finals = [line.rsplit("\r", 1)[-1] for line in err.rstrip("\n").split("\n")]  # what stays on screen
    labels = [final.split(" |", 1)[0] for final in finals[:-1]]
    # in pipeline order, each at its total: the bar of a stage is closed before the next one opens
    assert labels == [
        "generate doctor: 2/2 images",
        "score doctor: 2/2 images",
        "generate animal: 2/2 images",
        "score animal: 2/2 images",
    ], err
    done = DONE_EVALUATE.fullmatch(finals[-1])
    assert done, err
    assert done.groups() == ("4", "4", "0", "4")


def test_evaluate_table_output_with_a_cache(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["evaluate", "--model", "tiny", "--scorer", "tiny", "--images-per-prompt", "1", "--category", "doctor"]
    args += ["--cache", str(tmp_path / "cache")]
    assert run_tty(monkeypatch, capsys, *args)[0] == 0
    code, out, err = run_tty(monkeypatch, capsys, *args)  # the second run reads its image from the cache
    assert code == 0
    assert "doctor" in out and "done in" not in out  # stdout: the table only
    assert "generate doctor: 1/1 images" in err and "score doctor: 1/1 images" in err
    done = DONE_EVALUATE.fullmatch(last_line(err))
    assert done and done.groups() == ("1", "0", "1", "1"), err


def test_no_bars_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*EVALUATE, "--category", "doctor", "--format", "json"]) == 0
    out, err = capsys.readouterr()  # capsys' stderr is no terminal: a log file or a CI capture
    json.loads(out)
    assert DONE_EVALUATE.fullmatch(err.rstrip("\n")), err  # the closing line alone, no bar redraws
    assert "\r" not in err


def test_no_progress_keeps_the_done_line_and_quiet_drops_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*EVALUATE, "--category", "doctor", "--format", "json"]
    code, out, err = run_tty(monkeypatch, capsys, *args, "--no-progress")
    assert code == 0
    json.loads(out)
    assert DONE_EVALUATE.fullmatch(err.rstrip("\n")), err
    code, out, err = run_tty(monkeypatch, capsys, *args, "--quiet")
    assert code == 0
    json.loads(out)
    assert err == ""


def test_generate_bars_and_done_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["generate", "--model", "tiny", "--images-per-prompt", "1", "--cache", "cache"]
    code, out, err = run_tty(monkeypatch, capsys, *args)
    assert code == 0, err
    assert len(out.splitlines()) == 1  # the summary line, as before
    for category in ("beauty", "doctor", "culture", "animal", "nature"):
        assert f"generate {category}: 1/1 images" in err, err
    assert re.fullmatch(r"done in \d+\.\d s: 5 images: 5 generated, 0 read from the cache", last_line(err)), err
    code, out, err = run_tty(monkeypatch, capsys, *args, "-q")
    assert code == 0
    assert "0 new, 5 cached" in out
    assert err == ""


def test_stages_report_batch_by_batch(suite: Suite) -> None:
    """The library half: ``on_stage`` opens each stage with its total, and scoring advances per batch of
    the scorer (a tiny CLIP with batches of 2), not once at the end; nothing is printed."""
    from pytest_t2ibias.annotate.factory import load_annotator
    from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator
    from pytest_t2ibias.pipeline import evaluate_suite

    events: list[tuple[str, str, int]] = []
    steps: dict[tuple[str, str], list[int]] = {}

    def on_stage(stage: str, category: str, total: int) -> Callable[[int], None]:
        events.append((stage, category, total))
        return steps.setdefault((stage, category), []).append

    annotator = load_annotator("tiny", suite, device="cpu", batch_size=2)
    generator = DiffusersGenerator.tiny(batch_size=4, device="cpu")
    evaluation = evaluate_suite(
        suite, generator, annotator, images_per_prompt=5, categories=["doctor"], on_stage=on_stage
    )
    assert events == [("generate", "doctor", 5), ("score", "doctor", 5)]
    assert steps[("generate", "doctor")] == [4, 1]  # generation blocks of 4
    assert steps[("score", "doctor")] == [2, 2, 1]  # scoring batches of 2
    assert len(evaluation.categories["doctor"].records) == 5


def test_an_annotator_without_on_progress_reports_once(suite: Suite) -> None:
    """An annotator written to the plain protocol (``annotate(items, category)``) still works with
    ``on_stage``: its stage is reported whole when it returns."""
    from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
    from pytest_t2ibias.generate.synthetic import SyntheticGenerator
    from pytest_t2ibias.pipeline import evaluate_suite

    steps: dict[tuple[str, str], list[int]] = {}
    evaluate_suite(
        suite,
        SyntheticGenerator(suite, None),
        SyntheticAnnotator(suite),
        images_per_prompt=3,
        categories=["nature"],
        on_stage=lambda stage, category, total: steps.setdefault((stage, category), []).append,
    )
    assert steps[("score", "nature")] == [3]


@pytest.mark.parametrize("scorer", ["vqa", "captioner"])
def test_model_scorers_report_every_image(suite: Suite, scorer: str) -> None:
    """The VQA and captioner annotators count images (a VQA batch holds (image, question) pairs: an image
    counts once all its questions are answered); the callback does not change the records."""
    from pytest_t2ibias.annotate.captioner import CaptionerAnnotator, build_tiny_captioner
    from pytest_t2ibias.annotate.vqa import VqaAnnotator, build_tiny_vqa

    items = annotation_items(suite, "doctor", 5)
    annotator: VqaAnnotator | CaptionerAnnotator
    if scorer == "vqa":
        model, processor = build_tiny_vqa(suite)
        annotator = VqaAnnotator(suite, model, processor, model_id="tiny", device="cpu", batch_size=7)
    else:
        model, processor = build_tiny_captioner(suite)
        annotator = CaptionerAnnotator(suite, model, processor, model_id="tiny", device="cpu", batch_size=2)
    steps: list[int] = []
    records = annotator.annotate(items, "doctor", on_progress=steps.append)
    assert sum(steps) == 5 and all(k > 0 for k in steps)
    if scorer == "captioner":
        assert steps == [2, 2, 1]
    else:
        assert len(steps) > 1  # several forward passes, several reports
    assert records == annotator.annotate(items, "doctor")


def test_library_calls_are_silent(suite: Suite, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
    from pytest_t2ibias.generate.synthetic import SyntheticGenerator
    from pytest_t2ibias.pipeline import evaluate_suite

    evaluate_suite(suite, SyntheticGenerator(suite, None), SyntheticAnnotator(suite), images_per_prompt=2)
    assert capsys.readouterr() == ("", "")


def test_progress_module_examples() -> None:
    import pytest_t2ibias.progress

    result = doctest.testmod(pytest_t2ibias.progress)
    assert result.attempted > 0 and result.failed == 0


# -- t2ibias report ------------------------------------------------------------------------------------------


def saved_results(capsys: pytest.CaptureFixture[str], path: Path) -> Path:
    """A results JSON as `t2ibias evaluate --format json` saves it (the synthetic model: no torch)."""
    argv = ["evaluate", "--model", "synthetic", "--scorer", "synthetic", "--images-per-prompt", "2"]
    assert main([*argv, "--no-cache", "--format", "json", "--quiet"]) == 0
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read: No such file or directory"),
        ("{not json", "not a t2ibias results JSON file: field `<top level>`: Invalid JSON"),
        ('{"format": 2}', "not a t2ibias results JSON file: field `format`: Input should be 1 (got 2)"),
        (b"\xff\xfe{}", "not a results JSON file (not UTF-8 text)"),
        ("folder", "cannot read: Is a directory"),
    ],
    ids=["missing", "not-json", "wrong-schema", "not-utf8", "folder"],
)
def test_report_rejects_a_bad_results_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | bytes | None, fragment: str
) -> None:
    results = tmp_path / "results.json"
    if content == "folder":
        results.mkdir()
    elif isinstance(content, bytes):
        results.write_bytes(content)
    elif content is not None:
        results.write_text(content, encoding="utf-8")
    output = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(output)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"t2ibias report: error: {results}: "), err
    assert fragment in err, err
    assert not output.exists()


def test_report_needs_an_output(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "results.json"])
    assert exc.value.code == 2
    assert "-o/--output" in capsys.readouterr().err


def test_report_calls_write_html(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's half of the contract, with a stand-in writer: the parsed run, the path, the flag."""
    from pytest_t2ibias.results import RunResult

    calls: list[tuple[RunResult, str | Path, bool]] = []

    def write_html(run: RunResult, path: str | Path, *, full_images: bool = False) -> Path:
        calls.append((run, path, full_images))
        Path(path).write_text("<html></html>", encoding="utf-8")
        return Path(path)

    monkeypatch.setitem(sys.modules, "pytest_t2ibias.report.html", types.SimpleNamespace(write_html=write_html))
    results = saved_results(capsys, tmp_path / "results.json")
    output = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(output), "--full-images"]) == 0
    assert capsys.readouterr().out == f"t2ibias report: wrote {output}\n"
    [(run, path, full_images)] = calls
    assert run == RunResult.model_validate_json(results.read_text(encoding="utf-8"))
    assert set(run.categories) == {"beauty", "doctor", "culture", "animal", "nature"}
    assert (Path(path), full_images) == (output, True)
    assert main(["report", str(results), "-o", str(output)]) == 0
    assert calls[-1][2] is False


def test_report_writes_html(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """End to end with the real writer (pytest_t2ibias.report.html)."""
    results = saved_results(capsys, tmp_path / "results.json")
    for flag in ([], ["--full-images"]):
        output = tmp_path / f"report{len(flag)}.html"
        assert main(["report", str(results), "-o", str(output), *flag]) == 0
        assert capsys.readouterr().out == f"t2ibias report: wrote {output}\n"
        html = output.read_text(encoding="utf-8")
        assert "<html" in html.lower() and "doctor" in html
