"""Faults of the image cache (issue 21 items 5, 9, 11), replayed one per subprocess with a timeout.

    python benchmarks/faults_cache.py

Each fault class runs in its own process (``python -c CASE``) so that a hang is a timeout, not a stuck
benchmark: a FIFO where a cache PNG or sidecar should be, a FIFO baseline, a stopped (``SIGSTOP``) process
holding a batch lock while ``t2ibias generate --lock-timeout`` waits, forged entries with matching sidecars
(1x1, 16-bit greyscale, 144 megapixels), a decompression-bomb PNG, a folder where the PNG or sidecar
should be, a file where a shard folder should be, a generator's unusable outputs (20000x20000, NaN, inf,
the wrong size, a numpy array), and ``t2ibias generate --cache /proc/x``.

Counts: ``inputs`` (fault cases), ``tracebacks`` (a case whose process printed a Python traceback),
``hangs`` (past its timeout), ``corrupt`` (a forged or bad entry later read back as a valid image, or a
bad generator output cached and reused). :func:`run_faults` returns them; the last printed line is
``RESULT inputs=<n> tracebacks=<n> hangs=<n> corrupt=<n>``. About 30 s on 2 cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE_TIMEOUT_S = 30.0
#: The stopped-holder case runs the CLI with this bound; its own timeout leaves room for the imports.
LOCK_TIMEOUT_S = 3

#: The code every case shares: a 16x16 noise generator of params {"size": 16}, batches of 2, and helpers.
PRELUDE = textwrap.dedent(
    """
    import hashlib, io, json, os, struct, sys, warnings, zlib
    from pathlib import Path
    import numpy as np
    from PIL import Image
    from pytest_t2ibias.errors import T2IBiasError
    from pytest_t2ibias.generate import CallableGenerator, ImageCache, ImageRequest, cache_key, generate_images
    warnings.simplefilter("ignore")
    root = Path(sys.argv[1])

    def noise(prompt, seed, size=16):
        rng = np.random.default_rng([seed, len(prompt)])
        return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))

    gen = CallableGenerator(noise, name="noise", params={"size": 16}, batch_size=2)
    reqs = [ImageRequest("doctor", 0, i, "a doctor", 100 + i) for i in range(2)]
    key = cache_key(gen.fingerprint, "a doctor", 100, gen.params, 2, 0)
    cache = ImageCache(root)

    def png_bytes(image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def header_only_png(width, height):
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        rows = zlib.compress(b"\\0" * (1 + 3 * width))  # one row: the header claims the rest
        return b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows)

    def forge(data):
        png = cache.png_path(key)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(data)
        sidecar = {"key": key, "format": 2, "png_sha256": hashlib.sha256(data).hexdigest()}
        png.with_suffix(".json").write_text(json.dumps(sidecar))

    def used_bad(result):
        # the forged entry was used: the image is not the generator's 16x16 RGB, or was read from the cache
        image = result.images[0].image
        return int(image.size != (16, 16) or image.mode != "RGB" or result.images[0].cached)
    """
)

#: The forged PNG (or obstacle) per entry case; each then runs the stage once and reports what it used.
ENTRY_CASES = {
    "forged-1x1": 'forge(png_bytes(Image.new("RGB", (1, 1))))',
    "forged-grey16": "forge(png_bytes(Image.fromarray(np.full((16, 16), 40000, dtype=np.uint16))))",
    "forged-144mp": "forge(header_only_png(12000, 12000))",
    "bomb-png": "forge(header_only_png(100000, 100000))",
    "fifo-png": "generate_images(reqs, gen, cache); cache.png_path(key).unlink(); os.mkfifo(cache.png_path(key))",
    "fifo-sidecar": (
        "generate_images(reqs, gen, cache); p = cache.png_path(key).with_suffix('.json'); p.unlink(); os.mkfifo(p)"
    ),
    "folder-png": "cache.png_path(key).mkdir(parents=True)",
    "folder-sidecar": (
        "generate_images(reqs, gen, cache); p = cache.png_path(key).with_suffix('.json'); p.unlink(); p.mkdir()"
    ),
    "shard-file": "root.mkdir(parents=True, exist_ok=True); cache.png_path(key).parent.write_text('x')",
}
ENTRY_RUN = "result = generate_images(reqs, gen, cache)\nprint(f'RESULT corrupt={used_bad(result)}')\n"

#: What a bad generator returns for the second image of its batch; the case then reruns with a good one.
OUTPUT_CASES = {
    "output-20000px": 'Image.new("1", (20000, 20000))',
    "output-nan": "Image.fromarray(np.full((16, 16), np.nan, dtype=np.float32))",
    "output-inf": "Image.fromarray(np.full((16, 16), np.inf, dtype=np.float32))",
    "output-wrong-size": "noise('x', 1, size=24)",
    "output-array": "np.zeros((16, 16, 3), dtype=np.uint8)",
}
OUTPUT_RUN = textwrap.dedent(
    """
    class Bad:
        fingerprint, batch_size, params = gen.fingerprint, 2, gen.params
        def generate(self, prompts, seeds):
            return [noise(prompts[0], seeds[0]), BAD][: len(prompts)]
    try:
        generate_images(reqs, Bad(), cache)
    except T2IBiasError as err:
        assert "\\n" not in str(err)
    rerun = generate_images(reqs, gen, cache)  # a good generator: must not reuse a cached bad image
    print(f"RESULT corrupt={int(rerun.images[1].cached)}")
    """
)

FIFO_BASELINE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from pytest_t2ibias.snapshot import BaselineStore
    path = Path(sys.argv[1]) / "test_doctor.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    stored, _ = BaselineStore().read(path)
    print(f"RESULT corrupt={int(not isinstance(stored, str))}")  # a FIFO read as a baseline
    """
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pytest_t2ibias.generate import ImageCache
    cache = ImageCache(sys.argv[1])
    lock = cache.lock(sys.argv[2:])
    lock.acquire()
    getattr(cache, "note_holder", lambda keys: None)(sys.argv[2:])  # (the code before issue 21 has none)
    print("locked", flush=True)
    time.sleep(600)
    """
)

BLOCK_KEYS = textwrap.dedent(
    """
    from pytest_t2ibias.generate import cache_key, plan_blocks, plan_requests
    from pytest_t2ibias.generate.factory import load_generator
    from pytest_t2ibias.suites import load_suite
    suite = load_suite("t2i-biasbench")
    gen = load_generator("synthetic", suite)
    block = plan_blocks(plan_requests(suite, 1, ["doctor"]), gen.batch_size)[0]
    keys = [cache_key(gen.fingerprint, r.prompt, r.seed, gen.params, len(block), i) for i, r in enumerate(block)]
    print(" ".join(keys))
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(argv: list[str], timeout: float) -> tuple[str, str, bool]:
    """(stdout, stderr, hung) of a process, killed at ``timeout``."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)
    except subprocess.TimeoutExpired as err:

        def text(data: bytes | str | None) -> str:
            return data.decode("utf-8", "replace") if isinstance(data, bytes) else data or ""

        return text(err.stdout), text(err.stderr), True
    return done.stdout, done.stderr, False


def _python(code: str) -> Callable[[Path], tuple[str, str, bool]]:
    return lambda folder: _run([sys.executable, "-c", code, str(folder)], CASE_TIMEOUT_S)


def _stopped_holder(folder: Path) -> tuple[str, str, bool]:
    """``t2ibias generate`` while a stopped process holds the lock of its first batch."""
    keys, _, _ = _run([sys.executable, "-c", BLOCK_KEYS], CASE_TIMEOUT_S)
    cache = folder / "cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache), *keys.split()], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert holder.stdout is not None
        holder.stdout.readline()
        holder.send_signal(signal.SIGSTOP)
        argv = [sys.executable, "-m", "pytest_t2ibias.cli", "generate", "--model", "synthetic", "--category"]
        argv += ["doctor", "--images-per-prompt", "1", "--cache", str(cache), "--lock-timeout", str(LOCK_TIMEOUT_S)]
        out, err, hung = _run([*argv, "-q"], CASE_TIMEOUT_S + LOCK_TIMEOUT_S)
        if "unrecognized arguments: --lock-timeout" in err:  # the code before issue 21: its default wait
            out, err, hung = _run([*argv[:-2], "-q"], CASE_TIMEOUT_S + LOCK_TIMEOUT_S)
        return out, err, hung
    finally:
        holder.kill()
        holder.wait(timeout=30)


def _proc_cache(folder: Path) -> tuple[str, str, bool]:
    argv = [sys.executable, "-m", "pytest_t2ibias.cli", "generate", "--model", "synthetic", "--cache", "/proc/x"]
    return _run([*argv, "-q"], CASE_TIMEOUT_S)


def run_faults() -> dict[str, int]:
    """Replay every fault class; counts of inputs, tracebacks, hangs and corrupt entries used."""
    cases = {name: _python(PRELUDE + setup + "\n" + ENTRY_RUN) for name, setup in ENTRY_CASES.items()}
    cases.update({name: _python(PRELUDE + f"BAD = {bad}\n" + OUTPUT_RUN) for name, bad in OUTPUT_CASES.items()})
    cases["fifo-baseline"] = _python(FIFO_BASELINE)
    cases["stopped-lock-holder"] = _stopped_holder
    cases["proc-cache"] = _proc_cache
    counts = {"inputs": 0, "tracebacks": 0, "hangs": 0, "corrupt": 0}
    for name, case in cases.items():
        with tempfile.TemporaryDirectory(prefix=f"t2i-fault-{name}-") as folder:
            started = time.monotonic()
            out, err, hung = case(Path(folder))
            counts["inputs"] += 1
            counts["hangs"] += hung
            counts["tracebacks"] += "Traceback (most recent call last)" in err
            counts["corrupt"] += "RESULT corrupt=1" in out
            verdict = (
                "hang" if hung else "traceback" if "Traceback" in err else "corrupt" if "corrupt=1" in out else "ok"
            )
            if verdict == "traceback":
                print(err.strip().splitlines()[-1], file=sys.stderr)
            print(f"{name:22s} {verdict:9s} {time.monotonic() - started:5.1f} s", file=sys.stderr)
    return counts


if __name__ == "__main__":
    result = run_faults()
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
