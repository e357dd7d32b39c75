"""Fault classes of issue 21 (items 6, 7, 8, 11), replayed: secrets, scorer cards, pickle weights, bounds.

    python benchmarks/faults_secrets.py

:func:`run_faults` returns ``{"inputs", "tracebacks", "hangs", "secrets_leaked", "silent_green",
"wrongly_refused"}``, for ``bench_robustness.py`` to add to its own counts:

* **secrets**: every secret shape of ``tests/test_secrets.py`` through ``mask_credentials`` (the secret
  must go, the host / bucket / path stay), then the CLI (``t2ibias generate --model URL``, ``evaluate
  --scorer-card URL``, a usage error) and the plugin (``--t2i-model=URL``) in subprocesses: a secret in the
  output is a leak, a ``Traceback`` a traceback.
* **scorer cards**: every tampering of ``tests/test_card_tampering.py`` plus NaN / Infinity / 5,000-digit /
  100,000-deep files: ``ScorerCardError`` is right, another exception a traceback, a card that loads a
  silent green.
* **pickle weights**: ``hf:``, ``vqa:`` and ``captioner:`` folders holding only ``pytorch_model.bin``:
  ``ModelLoadError`` is right, a model that loads a silent green.
* **bounds**: ``--seed`` values argparse must refuse, results JSON with ``n: -5`` / ``1e308``, CodeBuild,
  Bamboo and Hudson environments (not seen as CI: a silent green); and a plain 3,000-value YAML under a
  1,000-value alias limit, which must load (``wrongly_refused`` otherwise).

Each in-process input must finish in :data:`HANG_S` (pickle folders: :data:`LOAD_HANG_S`), each subprocess
in :data:`SUBPROCESS_S`: slower is a hang. About 60 s on two cores.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

HANG_S = 2.0
LOAD_HANG_S = 30.0
SUBPROCESS_S = 120.0
KEYS = ("inputs", "tracebacks", "hangs", "secrets_leaked", "silent_green", "wrongly_refused")


class _Tally:
    def __init__(self) -> None:
        self.counts = dict.fromkeys(KEYS, 0)

    def refused(self, call: Callable[[], object], expected: type[BaseException], hang_s: float = HANG_S) -> None:
        """``call`` must raise ``expected``: another exception is a traceback, a return a silent green."""
        self.counts["inputs"] += 1
        start = time.perf_counter()
        try:
            call()
        except expected:
            pass
        except BaseException:
            self.counts["tracebacks"] += 1
        else:
            self.counts["silent_green"] += 1
        if time.perf_counter() - start > hang_s:
            self.counts["hangs"] += 1

    def masked(self, text: str, secret: str, kept: tuple[str, ...]) -> None:
        from pytest_t2ibias.masking import mask_credentials

        self.counts["inputs"] += 1
        shown = mask_credentials(text)
        if secret in shown or not all(part in shown for part in kept):
            self.counts["secrets_leaked"] += 1

    def subprocess(self, command: list[str], secret: str, cwd: Path | None = None) -> None:
        """A command that must fail cleanly (status 1 to 4), never show ``secret`` nor a traceback."""
        self.counts["inputs"] += 1
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
        env.update(
            HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        )
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_S, env=env, cwd=cwd)
        except subprocess.TimeoutExpired:
            self.counts["hangs"] += 1
            return
        text = done.stdout + done.stderr
        if secret in text:
            self.counts["secrets_leaked"] += 1
        if "Traceback" in text or "INTERNALERROR" in text:
            self.counts["tracebacks"] += 1
        if done.returncode == 0:
            self.counts["silent_green"] += 1


def _secrets(tally: _Tally, work: Path) -> None:
    from test_secrets import SHAPES

    for text, secret, kept in SHAPES:
        tally.masked(text, secret, kept)
    cli = [sys.executable, "-m", "pytest_t2ibias.cli"]
    url = "https://u:hunter2@host/m?X-Amz-Signature=s1gnature"
    tally.subprocess([*cli, "generate", "--model", url], "hunter2")
    tally.subprocess([*cli, "generate", "--model", "s3://AKIA:wJal/K7MDENG@bucket/m"], "K7MDENG")
    tally.subprocess([*cli, "generate", "--model", "tiny", "--dtype", url], "s1gnature")
    tally.subprocess(
        [*cli, "evaluate", "--model", "synthetic", "--scorer", "synthetic", "--no-cache", "--scorer-card", url],
        "hunter2",
    )
    (work / "test_bias.py").write_text(
        "import pytest\n\n@pytest.mark.t2ibias(category='doctor')\ndef test_doctor(t2ibias_result):\n    pass\n"
    )
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(work / "test_bias.py")]
    tally.subprocess([*pytest_cmd, f"--t2i-model={url}"], "hunter2", cwd=work)
    tally.subprocess([*pytest_cmd, "--t2i-model=synthetic", f"--t2i-scorer-card={url}"], "hunter2", cwd=work)


def _cards(tally: _Tally, work: Path) -> None:
    import math

    from test_card_tampering import TAMPERED, _data, _gender

    from pytest_t2ibias.errors import ScorerCardError
    from pytest_t2ibias.metrics.scorer_card import load_card

    texts: list[str] = []
    for _, mutate, _fragment in TAMPERED:
        data = _data()
        mutate(data)
        texts.append(json.dumps(data))
    for value in (math.nan, math.inf, -math.inf):
        data = _data()
        _gender(data)["kappa"]["value"] = value
        texts.append(json.dumps(data))
    texts.append(json.dumps(_data()).replace('"n_images": 100', '"n_images": 1' + "0" * 5000))
    texts.append("[" * 100_000 + "]" * 100_000)
    texts.append('{"attributes": ' * 50_000 + "{}" + "}" * 50_000)
    for i, text in enumerate(texts):
        path = work / f"card{i}.json"
        path.write_text(text, encoding="utf-8")
        tally.refused(lambda path=path: load_card(path), ScorerCardError)


def _pickles(tally: _Tally, work: Path) -> None:
    import torch

    from pytest_t2ibias.annotate.captioner import build_tiny_captioner
    from pytest_t2ibias.annotate.clip_backends import build_tiny_hf_clip
    from pytest_t2ibias.annotate.factory import load_annotator
    from pytest_t2ibias.annotate.vqa import build_tiny_vqa
    from pytest_t2ibias.errors import ModelLoadError
    from pytest_t2ibias.suites import load_suite

    suite = load_suite("t2i-biasbench")
    builds: list[tuple[str, Callable[[], tuple[Any, Any]]]] = [
        ("hf", build_tiny_hf_clip),
        ("vqa", lambda: build_tiny_vqa(suite)),
        ("captioner", lambda: build_tiny_captioner(suite)),
    ]
    for prefix, build in builds:
        folder = work / f"pickle-{prefix}"
        model, processor = build()
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        for weights in folder.glob("*.safetensors"):  # transformers 5 writes safetensors regardless
            weights.unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
        spec = f"{prefix}:{folder}"
        tally.refused(lambda spec=spec: load_annotator(spec, suite, device="cpu"), ModelLoadError, LOAD_HANG_S)


def _bounds(tally: _Tally, work: Path) -> None:
    from pydantic import ValidationError

    from pytest_t2ibias import _io
    from pytest_t2ibias.cli import main
    from pytest_t2ibias.errors import T2IBiasError
    from pytest_t2ibias.results import CategoryResultModel, RunResult
    from pytest_t2ibias.session import in_ci

    def cli(args: list[str]) -> None:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            main(args)

    for seed in (["--seed", "-1e23"], ["--seed=-5"], ["--seed", "1e30"], ["--seed", "nan"], ["--seed", "2.5"]):
        tally.refused(lambda seed=seed: cli(["generate", "--model", "synthetic", *seed]), SystemExit)
    category = CategoryResultModel(suite="s", model="m", mode="strict", n=10, metrics={"gmr": 0.5})
    good = json.loads(RunResult.of({"doctor": category}).to_json())
    for field, value in (("n", -5), ("n", 10**20), ("gmr", 1e308), ("gmr", -1e308)):
        data = json.loads(json.dumps(good))
        target = data["categories"]["doctor"]
        if field == "n":
            target["n"] = value
        else:
            target["metrics"]["gmr"] = value
        text = json.dumps(data)
        tally.refused(lambda text=text: RunResult.model_validate_json(text), ValidationError)

    def ci(name: str) -> None:
        if in_ci({name: "1"}) != name:
            raise AssertionError(f"{name} is not seen as CI")

    for name in ("CODEBUILD_BUILD_ID", "bamboo_buildKey", "HUDSON_URL"):
        tally.counts["inputs"] += 1
        try:
            ci(name)
        except AssertionError:
            tally.counts["silent_green"] += 1
    # a plain YAML beyond the alias limit is not a bomb: it must load (limit lowered to keep this cheap)
    saved = _io.MAX_YAML_NODES
    _io.MAX_YAML_NODES = 1_000
    try:
        tally.counts["inputs"] += 1
        plain = "values: [" + ", ".join(str(i) for i in range(3_000)) + "]\n"
        try:
            _io.load_yaml(plain, "plain.yaml", T2IBiasError)
        except T2IBiasError:
            tally.counts["wrongly_refused"] += 1
        bomb = "a: &a [" + ", ".join(["x"] * 100) + "]\nb: [" + ", ".join(["*a"] * 11) + "]\n"
        tally.refused(lambda: _io.load_yaml(bomb, "bomb.yaml", T2IBiasError), T2IBiasError)
    finally:
        _io.MAX_YAML_NODES = saved


def run_faults() -> dict[str, int]:
    """Replay every fault class; the counts (see the module docstring)."""
    tally = _Tally()
    with tempfile.TemporaryDirectory(prefix="t2ibias-faults-") as folder:
        work = Path(folder)
        _secrets(tally, work)
        _cards(tally, work)
        _pickles(tally, work)
        _bounds(tally, work)
    return tally.counts


if __name__ == "__main__":
    start = time.perf_counter()
    counts = run_faults()
    print(f"RESULT {' '.join(f'{k}={v}' for k, v in counts.items())} seconds={time.perf_counter() - start:.0f}")
