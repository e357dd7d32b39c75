"""Every "(real output)" block of docs/plugin.md is checked against a real run (issue 26, item 10).

The blocks used to be copied by hand from runs and went stale with every change of wording ("paired
bootstrap" where the code said "paired permutation"). Here each block is tied to the run that makes it
(the scenario named in its marker), the run is made, and the block's lines must appear in its output in
order: ``...`` stands for text left out (a line of only ``...`` for lines left out), a line may be cut,
and the scratch folder of the run (``/tmp/ex/``, or the checkout's ``/work/main/``) stands for wherever the
test ran it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugin.md"
#: The environment of an outer run that must not reach the runs made here.
OUTER = ("CI", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID", "GITHUB_STEP_SUMMARY")


def real_output_blocks(text: str) -> list[tuple[str, str]]:
    """(the marker's description, the fenced block after it) for every "(real output" marker."""
    out = []
    for match in re.finditer(r"\*\*\(real output\*\*(.*?)\*\*\)\*\*", text, flags=re.DOTALL):
        fence = re.search(r"^```[^\n]*\n(.*?)^```", text[match.end() :], flags=re.MULTILINE | re.DOTALL)
        assert fence is not None, f"no fenced block after {match.group(0)!r}"
        out.append((" ".join(match.group(1).split()), fence.group(1)))
    return out


def patterns(block: str, indent: bool = True) -> list[str]:
    """The block's lines as regexes, in order: ``...`` any text, ``/tmp/exN/`` any folder; lines that only
    say something was left out are dropped; ``indent=False``: leading spaces ignored (an XML excerpt)."""
    out = []
    for line in block.rstrip("\n").splitlines():
        if not line.strip() or re.fullmatch(r"\s*\.\.\.( \(.*\))?", line):
            continue
        pattern = re.escape(line.rstrip() if indent else line.strip())
        pattern = re.sub(r"/tmp/ex\d*/|/work/main/", ".*/", pattern.replace(r"\.\.\.", ".*"))
        out.append(pattern)  # a prefix: a block may cut long lines
    return out


def run(project: Path, *args: str) -> str:
    """A pytest run in ``project`` in a process of its own (the one the docs show), its output."""
    env = {k: v for k, v in os.environ.items() if k not in (*OUTER, "PYTEST_ADDOPTS")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


HELPERS = textwrap.dedent(
    """
    import pytest
    from pytest_t2ibias import (
        assert_cbs_below, assert_cultural_coverage, assert_missing_rate_below, assert_no_regression, assert_parity,
    )


    @pytest.mark.t2ibias(category="beauty")
    def test_cbs(t2ibias_result):
        assert_cbs_below(t2ibias_result, 0.1)


    @pytest.mark.t2ibias(category="animal")
    def test_missing(t2ibias_result):
        assert_missing_rate_below(t2ibias_result, gmr=0.2, iemr=0.2)


    @pytest.mark.t2ibias(category="culture")
    def test_cas(t2ibias_result):
        assert_cultural_coverage(t2ibias_result, max_cas=0.3)


    @pytest.mark.t2ibias(category="culture")
    def test_markers(t2ibias_result):
        assert_cultural_coverage(t2ibias_result, min_markers=100)


    @pytest.mark.t2ibias(category="nature")
    def test_straddle(t2ibias_result):
        assert_cbs_below(t2ibias_result, 0.55)


    @pytest.mark.t2ibias(category="doctor")
    def test_parity(t2ibias_result):
        assert_parity(t2ibias_result, 0.5)


    @pytest.mark.t2ibias(category="doctor")
    def test_regression_only(t2ibias_result):
        assert_no_regression(t2ibias_result)
    """
)
FAIR = "categories:\n  doctor:\n    attribute: {male: 0.5, female: 0.5}\n"
BIASED = "categories:\n  doctor:\n    attribute: {male: 0.9, female: 0.1}\n"
EIGHTY = "categories:\n  doctor:\n    attribute: {male: 0.8, female: 0.2}\n"
SYNTHETIC = ("--t2i-scorer=synthetic", "--t2i-images-per-prompt=100")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The runs the docs show, each once: a copy of example_tests/ with the helpers' scratch tests beside it."""
    project = tmp_path_factory.mktemp("ex") / "example_tests"
    shutil.copytree(ROOT / "example_tests", project, ignore=shutil.ignore_patterns(".t2ibias_cache", "__pycache__"))
    (project / "test_msgs.py").write_text(HELPERS)
    for name, config in (("fair.yaml", FAIR), ("biased.yaml", BIASED), ("eighty.yaml", EIGHTY)):
        (project / name).write_text(config)
    out = {
        # the tiny model as shipped: the terminal summary, the JUnit properties, nature's straddling bound
        "example": run(project, "--junitxml=junit.xml", "--ignore=test_msgs.py"),
        "tiny": run(project, "test_msgs.py", "-k", "parity or markers or straddle"),
        "synthetic": run(project, "test_msgs.py", "-k", "cbs or missing or cas", "--t2i-model=synthetic", *SYNTHETIC),
    }
    out["junit"] = (project / "junit.xml").read_text()
    # approved at 50 % male doctors (a new anchor: the example's are the tiny model's), then judged with 80 %
    # (the helper alone) and 90 % (the policy)
    for test in ("test_msgs.py::test_regression_only", "test_bias.py::test_doctor"):
        run(
            project, test, "--t2i-model=synthetic:fair.yaml", *SYNTHETIC, "--t2i-update-baselines", "--t2i-reset-anchor"
        )
    out["regression"] = run(
        project, "test_msgs.py::test_regression_only", "--t2i-model=synthetic:eighty.yaml", *SYNTHETIC
    )
    out["policy"] = run(project, "test_bias.py::test_doctor", "--t2i-model=synthetic:biased.yaml", *SYNTHETIC)
    return out


#: Which run each block of docs/plugin.md comes from, by a phrase of its marker.
SCENARIOS = {
    "the synthetic model with 90 % male doctors": "policy",
    "three occupations drawn with more skew": None,  # tests/test_plugin_aggregate.py checks this one
    "a test calling only `assert_no_regression`": "regression",
    "the tiny model, whose scorer labels all 32 doctors female": "tiny",
    "`assert_cbs_below(result, 0.1)` on beauty": "synthetic",
    "the tiny model's nature category": "tiny",
    "animal, `gmr=0.2, iemr=0.2`": "synthetic",
    "`max_cas=0.3`; and the tiny model with `min_markers=100`": "synthetic+tiny",
    "`pytest example_tests` on the tiny model": "example",
    "excerpt": "junit",
}


def _scenario(description: str) -> str | None:
    found = [run for phrase, run in SCENARIOS.items() if phrase in description]
    assert len(found) == 1, f"no scenario (or more than one) for the real-output block {description!r}"
    return found[0]


BLOCKS = real_output_blocks(DOC.read_text(encoding="utf-8"))


def test_every_real_output_block_has_its_run() -> None:
    assert len(BLOCKS) == len(SCENARIOS)
    assert {_scenario(description) for description, _ in BLOCKS} >= {"policy", "regression", "example", "junit"}


@pytest.mark.parametrize(("description", "block"), BLOCKS, ids=[d[:40] for d, _ in BLOCKS])
def test_the_block_is_what_its_run_prints(outputs: dict[str, str], description: str, block: str) -> None:
    scenario = _scenario(description)
    if scenario is None:
        pytest.skip("checked where the run is made")
    if scenario == "junit":  # pytest writes the XML on one line: one tag per line, as the docs show it
        lines = re.findall(r"<[^>]*>", outputs["junit"])
        pytest.LineMatcher(lines).re_match_lines(patterns(block, indent=False), consecutive=False)
        return
    output = "\n".join(outputs[name] for name in scenario.split("+"))
    pytest.LineMatcher(output.splitlines()).re_match_lines(patterns(block), consecutive=False)
