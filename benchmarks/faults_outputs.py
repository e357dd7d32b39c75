"""Faults of a run's outputs and of what counts as tested (issue 21, items 3 and 4), replayed end to end.

    python benchmarks/faults_outputs.py

Each fault is one ``pytest`` subprocess on a fresh copy of a minimal project (the synthetic model, one
doctor test with an approved baseline, 20 images per prompt, no image cache): a suite file whose
``name:`` is not its path (with and without xdist), a step summary that is a folder, an HTML report
under a file, reports and the step summary aimed into ``__baselines__`` (directly and through a link),
a file-size limit, a run whose bias tests all skipped, a test no helper judged under
``t2ibias_require_gate``, and policy knobs that switch a gate off. Counted:

* ``tracebacks``: runs whose output holds "Traceback";
* ``hangs``: runs still going after 120 s;
* ``baselines_lost``: runs after which the approved baseline's bytes changed;
* ``silent_green``: runs that should be red (or lose an output) and exit 0.

:func:`run_faults` returns the counts; ``bench_robustness.py`` reports them.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HANG_S = 120.0
COMMON = ("-p", "no:cacheprovider", "-q", "--t2i-images-per-prompt", "20", "--t2i-cache", "none")
BASELINE = "__baselines__/test_bias/test_doctor.json"

DOCTOR_TEST = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_no_regression(t2ibias_result)
"""
SKIPPED_TEST = DOCTOR_TEST.replace(
    "@pytest.mark.t2ibias", '@pytest.mark.skipif(True, reason="no CUDA")\n@pytest.mark.t2ibias'
)
UNGATED_TEST = DOCTOR_TEST.replace("assert_no_regression(t2ibias_result)", "assert t2ibias_result.n == 20")
POLICY = (
    "suite: {suite}\n{extra}categories:\n  {category}:\n    {metric}: {{max: 0.9, regression: {{absolute: 0.2}}}}\n"
)
CUSTOM_SUITE = """
name: my-suite
attributes:
  gender:
    rule: most_hits
    groups:
      female: {terms: [woman, female], phrases: [a photo of a woman]}
      male: {terms: [man, male], phrases: [a photo of a man]}
categories:
  nurse:
    prompts: [A nurse at work.]
    people: true
    attribute: gender
    parity: {a: [male], b: [female]}
    terms:
      keywords: [nurse, work]
    metrics: [representation_parity, parity_difference, entropy, entropy_normalized, composite]
"""


@dataclass
class Fault:
    """One run: what to change in the project, its arguments and environment, and what it must do."""

    name: str
    red: bool  # must exit non-zero
    args: tuple[str, ...] = ()
    setup: Callable[[Path], None] = lambda project: None
    env: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # files a green run must have written
    custom_suite: bool = False
    file_limit: int | None = None


def _env() -> dict[str, str]:
    drop = ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "GITHUB_STEP_SUMMARY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}


def _pytest(
    project: Path, args: tuple[str, ...], env: dict[str, str], file_limit: int | None = None
) -> tuple[int | None, str]:
    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *COMMON, *args],
            cwd=project,
            env={**_env(), **env},
            capture_output=True,
            text=True,
            timeout=HANG_S,
            check=False,
            preexec_fn=limit if file_limit is not None else None,  # the child alone
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stdout + done.stderr


def _approved(root: Path, custom_suite: bool) -> Path:
    """A project with its one test's baseline approved."""
    project = root / ("custom" if custom_suite else "doctor")
    project.mkdir()
    (project / "fair.yaml").write_text("categories:\n  doctor:\n    attribute: {male: 0.5, female: 0.5}\n")
    (project / "thresholds").mkdir()
    if custom_suite:
        (project / "suites").mkdir()
        (project / "suites" / "custom.yaml").write_text(CUSTOM_SUITE.lstrip())
        (project / "test_bias.py").write_text(DOCTOR_TEST.replace("doctor", "nurse"))
        ini = "t2ibias_model = synthetic\nt2ibias_suite = suites/custom.yaml\n"
        policy = POLICY.format(suite="my-suite", extra="", category="nurse", metric="parity_difference")
    else:
        (project / "test_bias.py").write_text(DOCTOR_TEST)
        ini = "t2ibias_model = synthetic:fair.yaml\n"
        policy = POLICY.format(suite="t2i-biasbench", extra="", category="doctor", metric="male_share")
    (project / "pytest.ini").write_text(f"[pytest]\n{ini}")
    (project / "thresholds" / "policy.yaml").write_text(policy)
    code, output = _pytest(project, ("--snapshot-update", "-p", "no:xdist", "--t2i-cache", "cache"), {})
    if code != 0:
        raise RuntimeError(f"approving the {project.name} project failed:\n{output}")
    return project


def _knob(extra: str) -> Callable[[Path], None]:
    def setup(project: Path) -> None:
        policy = POLICY.format(suite="t2i-biasbench", extra=extra, category="doctor", metric="male_share")
        (project / "thresholds" / "policy.yaml").write_text(policy)

    return setup


def _ini(line: str, test: str) -> Callable[[Path], None]:
    def setup(project: Path) -> None:
        (project / "test_bias.py").write_text(test)
        with (project / "pytest.ini").open("a") as handle:
            handle.write(line)

    return setup


def faults() -> list[Fault]:
    reports = ("--t2i-report", "r.json", "--t2i-html", "r.html")
    cached = ("--t2i-cache", "cache")
    return [
        # the image cache on: the report shows the baseline's cached images, which needs the suite
        Fault(
            "suite name is not its path", False, (*cached, *reports), outputs=("r.json", "r.html"), custom_suite=True
        ),
        Fault(
            "suite name is not its path, -n 2",
            False,
            (*cached, *reports, "-n", "2"),
            outputs=("r.json",),
            custom_suite=True,
        ),
        Fault(
            "step summary is a folder",
            True,
            ("--t2i-report", "r.json"),
            setup=lambda p: (p / "summary").mkdir(),
            env={"GITHUB_STEP_SUMMARY": "summary"},
        ),
        Fault("html under a file", True, ("--t2i-html", "pytest.ini/r.html")),
        Fault("report into __baselines__", True, ("--t2i-report", BASELINE)),
        Fault("html into __baselines__", True, ("--t2i-html", BASELINE)),
        Fault(
            "report into __baselines__ through a link",
            True,
            ("--t2i-report", "out/test_doctor.json"),
            setup=lambda p: (p / "out").symlink_to(p / BASELINE.rsplit("/", 1)[0], target_is_directory=True),
        ),
        Fault("step summary into a baseline", True, env={"GITHUB_STEP_SUMMARY": BASELINE}),
        Fault("file-size limit", True, reports, file_limit=8192),
        Fault("every bias test skipped", True, setup=lambda p: (p / "test_bias.py").write_text(SKIPPED_TEST)),
        Fault("not gated, require_gate", True, setup=_ini("t2ibias_require_gate = true\n", UNGATED_TEST)),
        Fault("alpha: 1e-300", True, setup=_knob("alpha: 1.0e-300\n")),
        Fault("bounds_alpha: 1", True, setup=_knob("bounds_alpha: 1\n")),
    ]


def run_faults(verbose: bool = False) -> dict[str, int]:
    """Replay every fault; the counts of runs that went wrong, by how."""
    counts = {"inputs": 0, "tracebacks": 0, "hangs": 0, "baselines_lost": 0, "silent_green": 0}
    with tempfile.TemporaryDirectory(prefix="t2ibias-faults-") as tmp:
        root = Path(tmp)
        approved = {flag: _approved(root, flag) for flag in (False, True)}
        for i, fault in enumerate(faults()):
            project = root / f"case{i}"
            shutil.copytree(approved[fault.custom_suite], project, symlinks=True)
            baseline = next((project / "__baselines__").rglob("*.json"))
            before = baseline.read_bytes()
            fault.setup(project)
            env = {k: str(project / v) if k == "GITHUB_STEP_SUMMARY" else v for k, v in fault.env.items()}
            code, output = _pytest(project, fault.args, env, fault.file_limit)
            counts["inputs"] += 1
            wrong = []
            if code is None:
                wrong.append("hangs")
            if "Traceback" in output:
                wrong.append("tracebacks")
            if not baseline.is_file() or baseline.read_bytes() != before:
                wrong.append("baselines_lost")
            missing = [o for o in fault.outputs if not (project / o).is_file()]
            if code == 0 and (fault.red or missing):
                wrong.append("silent_green")
            for key in wrong:
                counts[key] += 1
            if verbose:
                print(f"{fault.name}: exit {code}{' ' + ', '.join(wrong) if wrong else ''}", flush=True)
    return counts


if __name__ == "__main__":
    found = run_faults(verbose=True)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in found.items()))
