"""Robustness of the gate, tried as an attacker would: bad inputs, kill -9, concurrent processes, approvals.

    python benchmarks/bench_robustness.py [--mutations 300] [--kills 10] [--quick]

(1) **Inputs**: every input kind a user hands the package (suite YAML, policy YAML, synthetic-model YAML,
baseline JSON, caption CSV, labels CSV and JSON) mutated at random (seeded: bytes, lines, numbers, tokens
replaced, duplicated, truncated) and by the hostile inputs of ``tests/test_fuzz_inputs.py`` (alias bombs,
5,000-deep nesting, NaN, duplicate keys, ...). Each must load, or raise the package's error
(``T2IBiasError``) in one line naming the file, in under 2 s: anything else is a traceback, anything slower
a hang. Then a list of inputs that are *wrong* and must be refused (a repeated policy block, an Infinity
baseline, ``format: 99``, ...): one that loads is "silently accepted".
(2) **kill -9**: ``t2ibias generate --model tiny`` killed mid-run, again and again, on one cache; then every
entry must read back without a corruption warning and a final run must complete.
(3) **Work amplification**: generations / distinct images for 3 concurrent ``t2ibias generate`` processes on
a cold cache, and for ``pytest -n 2`` on a copy of ``example_tests`` (cold cache; generator calls counted by
a conftest), with the categories each scored once (scorer calls counted).
(4) **Baselines lost**: on a copy of ``example_tests``, approving runs that compare nothing (``--co``, a
missing suite or thresholds folder, a model that fails to load, ``-x`` stopping at a first failing test):
every baseline file must keep its bytes.
(5) **Fault classes** (issue 21), one module each beside this file, each replaying its faults end to end in
subprocesses with timeouts: ``faults_store`` (two tests on one baseline file, node-id selection or a
filtering conftest then prune, a symlinked store, approval write failures), ``faults_outputs`` (report
paths that fail or point into the baselines, a suite whose name is not its path, a run that tested nothing,
out-of-range policy knobs), ``faults_cache`` (non-regular files, a stopped lock holder, forged or bomb
entries, bad generator outputs) and ``faults_secrets`` (secret shapes in every user-given location, scorer
card tampering, pickle-only checkpoints, the smaller bad inputs). Their counts add to the line below.

Last line: ``RESULT inputs=<n> clean=<n> tracebacks=<n> hangs=<n> kills=<n> corrupt=<n> amplification=<x>
baselines_lost=<n> secrets_leaked=<n> silent_green=<n>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import test_fuzz_inputs as fuzz  # noqa: E402  (its seed inputs, loaders and hostile inputs)

from pytest_t2ibias.errors import T2IBiasError  # noqa: E402
from pytest_t2ibias.suites import load_suite  # noqa: E402

HANG_S = 2.0
#: Images per prompt of the killed runs: enough (160 images) that every kill lands mid-run.
KILL_PER_PROMPT = 32
NUMBERS = ["0", "-1", "-5", "1e10", "1e12", ".nan", ".inf", "NaN", "Infinity", "1e999", "99", "0.5", '""', "null"]
TOKENS = ["null", "[]", "{}", "true", '"x"', "&a", "*a", ":", "-", "'", '"', ",", ";", "\t", "\n", "{", "[", "#"]


# -- (1) inputs --------------------------------------------------------------------------------------------------


def mutate(text: str, rng: random.Random) -> str:
    """One seeded mutation of ``text``: a byte-level, line-level or token-level edit."""
    kind = rng.randrange(9)
    lines = text.splitlines(keepends=True) or [""]
    at = rng.randrange(len(text) + 1)
    if kind == 0:  # delete a span
        return text[:at] + text[at + rng.randrange(1, 40) :]
    if kind == 1:  # insert a token
        return text[:at] + rng.choice(TOKENS) + text[at:]
    if kind == 2:  # replace a number
        numbers = list(re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", text))
        if numbers:
            m = rng.choice(numbers)
            return text[: m.start()] + rng.choice(NUMBERS) + text[m.end() :]
        return text + rng.choice(NUMBERS)
    if kind == 3:  # drop a line
        del lines[rng.randrange(len(lines))]
        return "".join(lines)
    if kind == 4:  # duplicate a line (a repeated key)
        i = rng.randrange(len(lines))
        return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    if kind == 5:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)
    if kind == 6:  # truncate
        return text[:at]
    if kind == 7:  # replace a word
        words = list(re.finditer(r"[A-Za-z_][A-Za-z_0-9]*", text))
        if words:
            m = rng.choice(words)
            return text[: m.start()] + rng.choice(["", "x", m.group() * 2, m.group().upper(), "null"]) + text[m.end() :]
        return text
    b = bytearray(text.encode("utf-8"))  # flip a byte
    if b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return b.decode("utf-8", errors="replace")


def try_input(load: Callable[[Path], object], path: Path, text: str) -> str:
    """``loaded``, ``clean`` (one-line T2IBiasError naming the file), ``traceback`` or ``hang``."""
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(path)
        outcome = "loaded"
    except T2IBiasError as err:
        message = str(err)
        one_line = message and len(message.splitlines()) == 1 and len(message) <= 5000
        outcome = "clean" if one_line and str(path) in message else "traceback"
    except Exception:  # what we count: anything that is not the package's error
        outcome = "traceback"
    return "hang" if time.perf_counter() - start > HANG_S else outcome


def wrong_inputs() -> list[tuple[str, str, str]]:
    """(kind, name, text) of inputs that are wrong and must be refused (issue 10's defects)."""
    policy, suite = fuzz.POLICY_TEXT, fuzz.SUITE_TEXT
    baseline = json.loads(fuzz.BASELINE_TEXT)

    def with_metric(value: Any) -> str:
        data = json.loads(fuzz.BASELINE_TEXT)
        data["metrics"][next(iter(data["metrics"]))]["value"] = value
        return json.dumps(data)

    return [
        ("policy", "repeated category block", policy + "\n" + _last_block(policy)),
        ("policy", "infinite tolerance", policy.replace("absolute: 0.1", "absolute: .inf", 1)),
        ("policy", "contradictory bands", policy + "  beauty:\n    composite: {min: 0.6, warn_max: 0.3}\n"),
        ("suite", "repeated category", suite + "  doctor:\n    prompts: [x]\n    metrics: [gmr]\n"),
        ("suite", "blank prompt", suite.replace("prompts: [A doctor", "prompts: ['   ', A doctor", 1)),
        ("suite", "images_per_prompt 0", suite.replace("images_per_prompt: 100", "images_per_prompt: 0")),
        ("suite", "images_per_prompt 1e12", suite.replace("images_per_prompt: 100", f"images_per_prompt: {10**12}")),
        ("suite", "alias bomb", fuzz.YAML_HOSTILE["alias_bomb"](suite)),
        ("baseline", "Infinity value", with_metric(float("inf"))),
        ("baseline", "NaN value", with_metric(float("nan"))),
        ("baseline", "empty metrics", json.dumps({**baseline, "metrics": {}})),
        ("baseline", "format 99", json.dumps({**baseline, "format": 99})),
        ("baseline", "repeated key", fuzz.JSON_HOSTILE["duplicate_key"](fuzz.BASELINE_TEXT)),
    ]  # fmt: skip


def _last_block(policy: str) -> str:
    """The policy's last category block (its header and rules), to repeat it."""
    lines = policy.splitlines()
    start = max(i for i, line in enumerate(lines) if re.match(r"^  \w+:\s*$", line))
    return "\n".join(lines[start:]) + "\n"


def bench_inputs(mutations: int, seed: int) -> dict[str, Any]:
    suite = load_suite("t2i-biasbench")
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    per_kind: dict[str, Counter[str]] = {}
    bad: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (text, name, loader, hostile) in fuzz.KINDS.items():
            folder = Path(tmp) / kind
            folder.mkdir()
            path = folder / name

            def load(p: Path, loader: Any = loader) -> None:
                loader(p, suite)

            cases = [mutate(text, rng) for _ in range(mutations)] + [h(text) for h in hostile.values()]
            counts = per_kind.setdefault(kind, Counter())
            for case in cases:
                outcome = try_input(load, path, case)
                counts[outcome] += 1
                outcomes[outcome] += 1
                if outcome in ("traceback", "hang") and len(bad) < 5:
                    bad.append(f"{kind}: {case[:120]!r}")
        accepted = []
        for kind, what, text in wrong_inputs():
            _, name, loader, _ = fuzz.KINDS[kind]
            folder = Path(tmp) / f"wrong-{kind}"
            folder.mkdir(exist_ok=True)
            if try_input(lambda p, loader=loader: loader(p, suite), folder / name, text) == "loaded":
                accepted.append(f"{kind}: {what}")
    return {"outcomes": dict(outcomes), "per_kind": {k: dict(v) for k, v in per_kind.items()}, "bad": bad,
            "silently_accepted": accepted, "wrong_tried": len(wrong_inputs())}  # fmt: skip


# -- (2) kill -9 -------------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}


def generate_command(cache: Path, per_prompt: int) -> list[str]:
    return [sys.executable, "-m", "pytest_t2ibias.cli", "generate", "--model", "tiny", "--images-per-prompt",
            str(per_prompt), "--cache", str(cache), "--no-progress"]  # fmt: skip


def bench_kills(kills: int, seed: int) -> dict[str, Any]:
    """Kill generating processes at random moments; then check every entry and finish the run."""
    from pytest_t2ibias.errors import CacheCorruptionWarning
    from pytest_t2ibias.generate.cache import ImageCache

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        survived = 0
        for _ in range(kills):
            proc = subprocess.Popen(generate_command(cache, KILL_PER_PROMPT), env=_env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            # wait until this process writes (a new entry or a temp file), then kill it a moment later
            seen = {p.name for p in cache.rglob("*")} if cache.exists() else set()
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if cache.exists() and {p.name for p in cache.rglob("*")} - seen:
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                survived += 1
        corrupt = 0
        entries = 0
        image_cache = ImageCache(cache)
        for png in sorted(cache.rglob("*.png")):
            entries += 1
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                image = image_cache.load(png.stem)
            if image is None or any(issubclass(w.category, CacheCorruptionWarning) for w in caught):
                corrupt += 1
        final = subprocess.run(
            generate_command(cache, KILL_PER_PROMPT), env=_env(), capture_output=True, text=True, timeout=900
        )
    return {"kills": survived, "entries_checked": entries, "corrupt": corrupt, "final_run_ok": final.returncode == 0}


# -- (3) work amplification ------------------------------------------------------------------------------------

#: Counts generator and scorer calls of every process (xdist workers included) into files.
COUNTING_CONFTEST = """
import os
from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator
from pytest_t2ibias.annotate.clip import ClipAnnotator

_generate, _annotate = DiffusersGenerator.generate, ClipAnnotator.annotate
COUNTS = os.environ["T2IBIAS_COUNTS"]


def _count(name, n):
    with open(os.path.join(COUNTS, name), "a") as handle:
        handle.write(f"{n}\\n")


def generate(self, prompts, seeds):
    _count("generations", len(prompts))
    return _generate(self, prompts, seeds)


def annotate(self, items, category):
    _count("scored", 1)
    _count("scored_images", len(items))
    return _annotate(self, items, category)


DiffusersGenerator.generate, ClipAnnotator.annotate = generate, annotate
"""


def _total(path: Path) -> int:
    return sum(int(x) for x in path.read_text().split()) if path.exists() else 0


def bench_amplification(per_prompt: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cli-cache"
        procs = [subprocess.Popen(generate_command(cache, per_prompt), env=_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for _ in range(3)]  # fmt: skip
        generated = 0
        for proc in procs:
            text, _ = proc.communicate(timeout=900)
            new = re.search(r"(\d+) new, \d+ cached", text)
            extra = re.search(r"^(\d+) generated", text, re.MULTILINE)
            generated += int(extra.group(1)) if extra else int(new.group(1)) if new else 0
        distinct = len(list(cache.rglob("*.png")))
        out["cli_3_processes"] = {"generations": generated, "distinct": distinct,
                                  "amplification": generated / max(distinct, 1)}  # fmt: skip

        project = Path(tmp) / "example"
        shutil.copytree(ROOT / "example_tests", project, ignore=shutil.ignore_patterns(".t2ibias_cache", "__pycache__"))
        (project / "conftest.py").write_text(COUNTING_CONFTEST)
        shutil.rmtree(project / "__baselines__")  # approved afresh at this n: the run passes, doing all the work
        counts = Path(tmp) / "counts"
        counts.mkdir()
        env = {**_env(), "T2IBIAS_COUNTS": str(counts)}
        run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                              f"--t2i-images-per-prompt={per_prompt}", "--t2i-update-baselines"], cwd=project,
                             env=env, capture_output=True, text=True, timeout=1800)  # fmt: skip
        distinct = len(list((project / ".t2ibias_cache").rglob("*.png")))
        generations = _total(counts / "generations")
        out["pytest_xdist_2"] = {
            "exit": run.returncode,
            "generations": generations,
            "distinct": distinct,
            "amplification": generations / max(distinct, 1),
            "categories_scored": _total(counts / "scored"),
            "images_scored": _total(counts / "scored_images"),
        }
    out["max"] = max(v["amplification"] for v in out.values() if isinstance(v, dict))
    return out


# -- (4) baselines lost ---------------------------------------------------------------------------------------

FAILING_FIRST = """
import pytest

@pytest.mark.t2ibias(category="doctor")
def test_0_fails_first(t2ibias_result):
    raise AssertionError("fails before its baseline")
"""


def bench_baselines() -> dict[str, Any]:
    scenarios: dict[str, list[str]] = {
        "collect only": ["--co"],
        "missing suite": ["--t2i-suite=missing.yaml"],
        "missing thresholds": ["--t2i-thresholds=missing"],
        "model fails to load": ["--t2i-model=org/not-a-model"],
        "-x, first test fails": ["-x", "-p", "no:randomly"],
        "deselected": ["-k", "nothing_matches"],
    }
    lost: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in scenarios.items():
            project = Path(tmp) / re.sub(r"\W+", "-", name)
            shutil.copytree(ROOT / "example_tests", project, ignore=shutil.ignore_patterns("__pycache__"))
            if name.startswith("-x"):
                (project / "test_0_first.py").write_text(FAILING_FIRST)
            before = {p: p.read_bytes() for p in (project / "__baselines__").rglob("*.json")}
            for flag in ("--snapshot-update", "--t2i-update-baselines"):
                subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", flag, *args],
                               cwd=project, env=_env(), capture_output=True, text=True, timeout=900)  # fmt: skip
            lost[name] = sum(1 for p, data in before.items() if not p.exists() or p.read_bytes() != data)
    return {"per_scenario": lost, "lost": sum(lost.values())}


FAULT_MODULES = ("faults_store", "faults_outputs", "faults_cache", "faults_secrets")
FAULT_KEYS = ("inputs", "tracebacks", "hangs", "corrupt", "baselines_lost", "secrets_leaked", "silent_green")


def bench_faults() -> dict[str, Any]:
    """Run every fault module's ``run_faults()`` and add up their counts (a module missing is an error: the
    benchmark must not look green for faults it did not try)."""
    import importlib

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    per_module: dict[str, dict[str, int]] = {}
    for name in FAULT_MODULES:
        started = time.perf_counter()
        counts = importlib.import_module(name).run_faults()
        per_module[name] = {k: int(counts.get(k, 0)) for k in FAULT_KEYS}
        per_module[name]["seconds"] = round(time.perf_counter() - started)
    totals = {k: sum(m[k] for m in per_module.values()) for k in FAULT_KEYS}
    return {"per_module": per_module, **totals}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutations", type=int, default=300, help="random mutations per input kind")
    parser.add_argument("--kills", type=int, default=10, help="generate processes killed mid-run")
    parser.add_argument("--per-prompt", type=int, default=8, help="images per prompt in (2) and (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50 mutations, 3 kills, 2 images per prompt")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to leave out: kills,amplification,baselines,faults"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.mutations, args.kills, args.per_prompt = 50, 3, 2
    skip = set(filter(None, args.skip.split(",")))
    start = time.perf_counter()

    inputs = bench_inputs(args.mutations, args.seed)
    o = inputs["outcomes"]
    total = sum(o.values())
    print(f"(1) inputs: {total} tried over {len(inputs['per_kind'])} kinds ({args.mutations} random mutations each "
          f"+ the hostile inputs of tests/test_fuzz_inputs.py)")  # fmt: skip
    for kind, counts in inputs["per_kind"].items():
        print(f"    {kind:<12} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"    loaded {o.get('loaded', 0)}, clean one-line errors {o.get('clean', 0)}, tracebacks "
          f"{o.get('traceback', 0)}, hangs (> {HANG_S:g} s) {o.get('hang', 0)}")  # fmt: skip
    for line in inputs["bad"]:
        print(f"      {line}")
    print(f"    wrong inputs that must be refused: {inputs['wrong_tried']} tried, "
          f"{len(inputs['silently_accepted'])} silently accepted {inputs['silently_accepted'] or ''}")  # fmt: skip

    kills = {"kills": 0, "corrupt": 0, "entries_checked": 0, "final_run_ok": True}
    if "kills" not in skip:
        kills = bench_kills(args.kills, args.seed)
        print(f"(2) kill -9: {kills['kills']} generate processes killed mid-run on one cache; "
              f"{kills['entries_checked']} entries checked, {kills['corrupt']} corrupt; final run "
              f"{'completed' if kills['final_run_ok'] else 'FAILED'}")  # fmt: skip
    amplification = {"max": 0.0}
    if "amplification" not in skip:
        amplification = bench_amplification(args.per_prompt)
        cli, xd = amplification["cli_3_processes"], amplification["pytest_xdist_2"]
        print(f"(3) work: 3 concurrent `t2ibias generate`: {cli['generations']} generations for {cli['distinct']} "
              f"images ({cli['amplification']:.2f}); pytest -n 2 on example_tests: {xd['generations']} generations "
              f"for {xd['distinct']} images ({xd['amplification']:.2f}), {xd['categories_scored']} category "
              f"scorings for 5 categories ({xd['images_scored']} images scored); pytest exit {xd['exit']} (the "
              "tiny model fails its own bounds at some n)")  # fmt: skip
    baselines = {"lost": 0, "per_scenario": {}}
    if "baselines" not in skip:
        baselines = bench_baselines()
        per = ", ".join(f"{k} {v}" for k, v in baselines["per_scenario"].items())
        print("(4) baselines changed or deleted by approving runs that compared nothing (--snapshot-update and "
              f"--t2i-update-baselines each): {per}")  # fmt: skip
    faults: dict[str, Any] = {k: 0 for k in FAULT_KEYS} | {"per_module": {}}
    if "faults" not in skip:
        faults = bench_faults()
        print("(5) fault classes of issue 21:")
        for name, counts in faults["per_module"].items():
            print(f"    {name:<15} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"elapsed {time.perf_counter() - start:.0f} s")
    print(
        f"RESULT inputs={total + faults['inputs']} clean={o.get('clean', 0)} "
        f"tracebacks={o.get('traceback', 0) + faults['tracebacks']} hangs={o.get('hang', 0) + faults['hangs']} "
        f"kills={kills['kills']} corrupt={kills['corrupt'] + faults['corrupt']} "
        f"amplification={amplification['max']:.2f} baselines_lost={baselines['lost'] + faults['baselines_lost']} "
        f"secrets_leaked={faults['secrets_leaked']} silent_green={faults['silent_green']}"
    )
    return {"inputs": inputs, "kills": kills, "amplification": amplification, "baselines": baselines, "faults": faults}


if __name__ == "__main__":
    main()
