"""The ``t2ibias`` command."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pytest_t2ibias import __version__
from pytest_t2ibias._io import clip, one_line
from pytest_t2ibias.errors import CacheLocationError as CacheLocationError
from pytest_t2ibias.errors import SettingsError
from pytest_t2ibias.masking import mask_credentials
from pytest_t2ibias.progress import Stopwatch
from pytest_t2ibias.report.summary import aggregate_lines
from pytest_t2ibias.report.table import format_suite_table
from pytest_t2ibias.types import MODES

if TYPE_CHECKING:
    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.generate.sharding import RankInfo
    from pytest_t2ibias.pipeline import Evaluation
    from pytest_t2ibias.progress import StageBars
    from pytest_t2ibias.results import RunResult
    from pytest_t2ibias.suites.schema import Suite

#: After the command list of ``t2ibias --help``: the offline models are spec values, not commands, and
#: are the first thing to try, so the overview names them.
_EPILOG = """\
offline models (--model of generate and evaluate):
  tiny                       random-weight tiny pipeline: checks the plumbing, no download
  synthetic[:CONFIG.yaml]    the synthetic model: images with a known, configurable bias and a
                             visible mark; --scorer synthetic reads the mark back exactly, so a
                             policy can be tested in seconds (see docs/plugin.md)

`t2ibias COMMAND --help` describes a command's options.
"""

_REPLAY_DESCRIPTION = (
    "Compute every metric of a suite from a caption CSV (image file name, caption per row). Replay defaults "
    "to paper mode (--mode paper: the paper's definitions, reproducing its published numbers); pass "
    "--mode strict for the fixed definitions (the ones evaluate and the plugin gate with)."
)

T = TypeVar("T")

_MODEL_HELP = (
    "hub id, local pipeline folder, 'tiny' (offline), 'synthetic[:CONFIG.yaml]' (known bias), "
    "python:MODULE:ATTR or an installed prefix (see docs/own-model.md)"
)


def _echo(text: str, *, file: Any = None, end: str = "\n") -> None:
    """``print``, with credentials masked: a model, scorer, cache, card or suite given as a URL with a
    password or a signed query reaches the terminal (errors, tables, the results JSON) as ``***``."""
    print(mask_credentials(text), file=file, end=end)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``t2ibias generate: error: argument --x: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, mask_credentials(f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n"))


def _lock_timeout(text: str) -> float:
    """``--lock-timeout``: seconds, a positive finite number."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


_LOCK_TIMEOUT_HELP = (
    "seconds to wait in all for batches another process is generating in the same cache, then fail "
    "naming the lock and its holder (default 600)"
)


def _images_per_prompt(text: str) -> int:
    """``--images-per-prompt``: an integer from 1 to :data:`MAX_IMAGES_PER_PROMPT` (``1e3`` is 1000)."""
    from pytest_t2ibias.suites.schema import MAX_IMAGES_PER_PROMPT

    try:
        value = float(text) if any(ch in text.lower() for ch in ".e") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {clip(text, 40)}") from None
    if isinstance(value, float) and not value.is_integer():  # also nan and inf
        raise argparse.ArgumentTypeError(f"must be an integer, got {clip(text, 40)}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {clip(text, 40)}")
    if value > MAX_IMAGES_PER_PROMPT:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_IMAGES_PER_PROMPT}, got {clip(text, 40)}")
    return int(value)


#: The largest ``--seed``: image seeds are derived from it by hashing, and a generator takes 64 bits.
MAX_SEED = 2**63 - 1


def _seed(text: str) -> int:
    """``--seed``: an integer from 0 to :data:`MAX_SEED` (``1e3`` is 1000); the error names the range."""
    try:
        value = float(text) if any(ch in text.lower() for ch in ".e") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {clip(text, 40)}") from None
    if (isinstance(value, float) and not value.is_integer()) or not 0 <= value <= MAX_SEED:  # also nan and inf
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {clip(text, 40)}")
    return int(value)


#: Options whose value is a number: ``--seed -1e23`` is read as ``--seed=-1e23`` (argparse takes a value
#: like ``-1e23``, which is not a plain negative integer, for an option and says only "expected one argument").
_NUMBER_OPTIONS = ("--seed", "--steps", "--guidance-scale", "--batch-size", "--images-per-prompt")
_NUMBER = re.compile(r"-[0-9.]+(?:e[+-]?[0-9]+)?|-inf(?:inity)?|-nan", re.IGNORECASE)


def _joined_numbers(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``OPTION -NUMBER`` pairs of :data:`_NUMBER_OPTIONS` joined as ``OPTION=-NUMBER``."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _NUMBER_OPTIONS and _NUMBER.fullmatch(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="t2ibias",
        description="Bias metrics for text-to-image models (T2I-BiasBench).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the epilog's table as written
    )
    parser.add_argument("--version", action="version", version=f"t2ibias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    replay = sub.add_parser(
        "replay",
        help="metrics from a caption CSV (image name, caption); paper mode",
        description=_REPLAY_DESCRIPTION,
    )
    replay.add_argument("captions", help="CSV file: image file name, then caption, per row")
    replay.add_argument(
        "--mode",
        choices=MODES,
        default="paper",
        help="paper (default): the paper's definitions and published numbers; strict: the fixed definitions",
    )
    replay.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    replay.add_argument("--model-name", default=None, help="model name in the output (default: file stem)")
    replay.add_argument("--suite", default="t2i-biasbench", help="built-in suite name or suite YAML path")
    replay.add_argument(
        "--allow-bad-rows",
        action="store_true",
        help="measure the readable rows even when some rows could not be read (no image name or caption, or "
        "another number of cells than the header); without it such a file exits with status 1 (a repeated "
        "image name is readable: paper mode counts every row, strict mode the first)",
    )

    gen = sub.add_parser(
        "generate",
        help="fill the image cache for a suite",
        description="Generate a suite's images into the image cache (images already there are reused). "
        "Progress bars per category go to stderr when it is a terminal; a closing 'done in' line follows.",
    )
    gen.add_argument("--suite", default="t2i-biasbench", help="built-in suite name or suite YAML path")
    gen.add_argument("--model", required=True, help=_MODEL_HELP)
    gen.add_argument(
        "--images-per-prompt", type=_images_per_prompt, default=None, help="default: the suite's value (1 to 100000)"
    )
    gen.add_argument("--category", action="append", default=None, help="only this category (repeatable)")
    gen.add_argument(
        "--cache", default=".t2ibias_cache", help="image cache folder, or an fsspec URL (s3://, gs://, file://)"
    )
    gen.add_argument("--lock-timeout", type=_lock_timeout, default=None, help=_LOCK_TIMEOUT_HELP)
    gen.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    gen.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="weights dtype")
    gen.add_argument("--steps", type=int, default=None, help="inference steps (default 30; tiny: 4)")
    gen.add_argument("--guidance-scale", type=float, default=None, help="guidance scale (default 7.5)")
    gen.add_argument("--batch-size", type=int, default=None, help="images per pipeline call (default 4; tiny: 8)")
    gen.add_argument("--seed", type=_seed, default=None, help="suite seed override (default: the suite's seed)")
    gen.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    gen.add_argument(
        "--allow-pickle", action="store_true", help="load pickle (.bin) weights (default: safetensors only)"
    )
    _add_quiet_options(gen)

    ev = sub.add_parser(
        "evaluate",
        help="generate, score and measure a suite; strict mode",
        description="Generate (through the image cache), score and measure a suite; prints the metrics "
        "table or the results JSON (--format json; `t2ibias report` renders it as HTML). Progress bars per "
        "stage and category go to stderr when it is a terminal; a closing 'done in' line follows.",
    )
    ev.add_argument("--suite", default="t2i-biasbench", help="built-in suite name or suite YAML path")
    ev.add_argument("--model", required=True, help=_MODEL_HELP)
    ev.add_argument(
        "--scorer",
        required=True,
        help="tiny, open_clip:ARCH/PRETRAINED, hf:ID, vqa:ID, captioner:ID, labels:PATH, synthetic, python:MODULE:ATTR",
    )
    ev.add_argument(
        "--images-per-prompt", type=_images_per_prompt, default=None, help="default: the suite's value (1 to 100000)"
    )
    ev.add_argument("--category", action="append", default=None, help="only this category (repeatable)")
    ev.add_argument("--mode", choices=MODES, default="strict", help="strict (default, for gating) or paper")
    ev.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    ev.add_argument(
        "--cache", default=".t2ibias_cache", help="image cache folder, or an fsspec URL (s3://, gs://, file://)"
    )
    ev.add_argument("--no-cache", action="store_true", help="keep images in memory only")
    ev.add_argument("--lock-timeout", type=_lock_timeout, default=None, help=_LOCK_TIMEOUT_HELP)
    ev.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    ev.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="dtype of both models")
    ev.add_argument("--steps", type=int, default=None, help="inference steps (default 30; tiny: 4)")
    ev.add_argument("--batch-size", type=int, default=None, help="images per pipeline call")
    ev.add_argument("--seed", type=_seed, default=None, help="suite seed override")
    ev.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    ev.add_argument(
        "--allow-pickle", action="store_true", help="load pickle (.bin) weights (default: safetensors only)"
    )
    ev.add_argument(
        "--allow-label-problems",
        action="store_true",
        help="precomputed labels (labels:PATH) missing, unplanned or outside the suite's groups: counted "
        "warnings instead of errors",
    )
    ev.add_argument(
        "--scorer-card",
        default=None,
        metavar="CARD.json",
        help="correct the metrics for the scorer's errors with this card (t2ibias audit-scorer)",
    )
    _add_quiet_options(ev)

    audit = sub.add_parser(
        "audit-scorer",
        help="measure a scorer's errors on human-labelled images: a scorer card",
        description="Run a scorer on human-labelled images (a CSV: path, one column per attribute, optional "
        "term:<name> 0/1 columns) and write its scorer card: per attribute the confusion matrix, per-class "
        "sensitivity/specificity, Cohen's kappa; per term precision/recall (see docs/scorer-audit.md).",
    )
    audit.add_argument("--scorer", required=True, help="the scorer spec, as for evaluate")
    audit.add_argument("--labels", required=True, metavar="HUMAN.csv", help="the human labels (paths relative to it)")
    audit.add_argument("--suite", default="t2i-biasbench", help="built-in suite name or suite YAML path")
    audit.add_argument("--category", default=None, help="the category of every row (when the CSV has no column)")
    audit.add_argument("-o", "--output", required=True, metavar="CARD.json", help="the scorer card to write")
    audit.add_argument("--mode", choices=MODES, default="strict", help="the scorer's mode (as for evaluate)")
    audit.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    audit.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="the scorer's dtype")
    audit.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    audit.add_argument(
        "--allow-pickle", action="store_true", help="load pickle (.bin) weights (default: safetensors only)"
    )

    _add_suites_parser(sub)
    report = sub.add_parser(
        "report",
        help="render a saved results JSON as an HTML page",
        description="Render a results JSON file (the output of `t2ibias evaluate --format json`, "
        "`t2ibias replay --format json` or pytest's --t2i-report) as one self-contained HTML page.",
    )
    report.add_argument("results", metavar="RESULTS.json", help="the results JSON file")
    report.add_argument("-o", "--output", required=True, metavar="REPORT.html", help="the HTML file to write")
    report.add_argument(
        "--full-images",
        action="store_true",
        help="also copy the images shown, full size, into <report>_images/ beside the report and link each "
        "thumbnail to its copy (default: thumbnails only, embedded in the one HTML file)",
    )
    return parser


def _add_quiet_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-progress", action="store_true", help="no progress bars (the 'done in' line stays)")
    command.add_argument(
        "-q", "--quiet", action="store_true", help="nothing on stderr but warnings and errors: no bars, no 'done in'"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_joined_numbers(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "generate":
            return _generate(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "report":
            return _report(args)
        if args.command == "suites":
            return _suites(args)
        if args.command == "audit-scorer":
            return _audit_scorer(args)
    except BrokenPipeError:
        # `t2ibias replay ... | head`: the reader left; stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


def _replay(args: argparse.Namespace) -> int:
    # A replay builds millions of small objects that live to the end (rows, records, per-image results) and
    # no reference cycles worth collecting: the cyclic collector only re-traversed them, a fifth of the
    # time of 100,000 rows. Paused for the command (reference counting still frees everything), then
    # resumed for whoever called main().
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _replay_command(args)
    finally:
        if enabled:
            gc.enable()


def _replay_command(args: argparse.Namespace) -> int:
    from pytest_t2ibias.replay import CaptionFileError, read_caption_csv, replay_table
    from pytest_t2ibias.suites import SuiteError, load_suite

    try:
        suite = load_suite(args.suite)
        table = read_caption_csv(args.captions)
    except (CaptionFileError, SuiteError) as err:
        _echo(f"t2ibias replay: error: {err}", file=sys.stderr)
        return 1
    if table.dropped_lines:
        _echo(
            f"t2ibias replay: {table.path}: {table.dropped} rows dropped (no image name or no caption): "
            f"{_lines(table.dropped_lines)}",
            file=sys.stderr,
        )
    if table.malformed_lines:
        _echo(
            f"t2ibias replay: {table.path}: {table.malformed} rows have another number of cells than the header "
            f"(an unquoted {table.delimiter!r} in a caption, or a missing cell): {_lines(table.malformed_lines)}",
            file=sys.stderr,
        )
    if table.duplicate_lines:
        kept = (
            "paper mode counts every row, as the authors' notebooks did"
            if args.mode == "paper"
            else "strict mode keeps the first"
        )
        _echo(
            f"t2ibias replay: {table.path}: {table.duplicates} rows repeat the image name of an earlier line "
            f"({kept}): {_lines(table.duplicate_lines)}",
            file=sys.stderr,
        )
    if table.bad_rows and not args.allow_bad_rows:
        _echo(
            f"t2ibias replay: error: {table.path}: {table.bad_rows} of {table.bad_rows + len(table.rows)} rows "
            "could not be read; fix the file or pass --allow-bad-rows to measure the others",
            file=sys.stderr,
        )
        return 1
    result = replay_table(table, suite, mode=args.mode, model_name=args.model_name)
    unmatched = result.unmatched_images
    if unmatched:
        names = ", ".join(unmatched[:5])
        more = "" if len(unmatched) <= 5 else f", ... ({len(unmatched) - 5} more)"
        _echo(
            f"t2ibias replay: {len(unmatched)} rows match no category of suite {suite.name!r}: {names}{more}",
            file=sys.stderr,
        )
    if args.format == "json":
        _echo(result.to_json(indent=2))
    else:
        _echo(format_suite_table(result))
    return 0


def _lines(numbers: Sequence[int], shown: int = 5) -> str:
    """``lines 3, 7, 9`` (the first ``shown`` of them, then how many more)."""
    head = ", ".join(str(n) for n in numbers[:shown])
    more = f", ... ({len(numbers) - shown} more)" if len(numbers) > shown else ""
    return f"line{'s' if len(numbers) > 1 else ''} {head}{more}"


def _check_cache_folder(cache: str) -> None:
    """``--cache`` must be a folder or a path one can be made at: a file there (or above) is an error;
    an fsspec URL (``s3://``, ``gs://``, ``file://``, ...) must open (credentials masked in the error)."""
    from pytest_t2ibias.generate.storage import RemoteStore, is_url

    if is_url(cache):
        RemoteStore(cache)
        return
    path = Path(cache)
    missing = []  # the folders to make, deepest first
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                what = "is a file" if existing == path else f"cannot be made: {existing} is a file"
                raise SettingsError(f"--cache {clip(cache)}: {what}, not a folder")
            break
        missing.append(existing)
    # probed now (made, written, and what was made removed again), so that an impossible place (/proc/x, a
    # read-only disk) is one line before the model loads rather than a traceback at the first store
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".t2ibias-probe.", suffix=".tmp"):
                pass
        finally:
            for folder in missing:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    except OSError as err:
        raise CacheLocationError(
            f"--cache {clip(cache)}: cannot be made or written: {err.strerror or type(err).__name__}"
        ) from None


def _load_generator(args: argparse.Namespace, suite: Suite) -> ImageGenerator:
    from pytest_t2ibias.generate.factory import load_generator

    return load_generator(
        args.model,
        suite,
        device=args.device,
        dtype=args.dtype,
        steps=args.steps,
        guidance_scale=getattr(args, "guidance_scale", None),
        batch_size=args.batch_size,
        local_files_only=args.local_files_only,
        allow_pickle=args.allow_pickle,
    )


def _generator_for(args: argparse.Namespace, suite: Suite, annotator: ImageAnnotator) -> ImageGenerator:
    """The model; with precomputed labels it is never needed to make an image, so it stays unloaded
    (the baselines still name it, by a fingerprint told from the spec when it can be)."""
    from pytest_t2ibias.pipeline import label_lookup

    if label_lookup(annotator) is None:
        return _load_generator(args, suite)
    from pytest_t2ibias.generate.objects import LazyGenerator
    from pytest_t2ibias.registry import cheap_fingerprint

    return LazyGenerator(lambda: _load_generator(args, suite), cheap_fingerprint(args.model, None))


def _generate(args: argparse.Namespace) -> int:
    from pytest_t2ibias.generate import ImageCache, generate_images, plan_requests
    from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
    from pytest_t2ibias.suites import SuiteError, load_suite

    watch = Stopwatch()  # the whole command, model loading included: what the user waited for
    try:
        ranks = _launch(args)
        _check_cache_folder(args.cache)
        suite = load_suite(args.suite)
        requests = plan_requests(suite, args.images_per_prompt, args.category, args.seed)
        generator = _load_generator(args, suite)
    except CacheLocationError as err:
        _echo(f"t2ibias generate: error: {err}", file=sys.stderr)
        return 2
    except (SuiteError, ModelLoadError, ValueError) as err:
        _echo(f"t2ibias generate: error: {err}", file=sys.stderr)
        return 1
    from pytest_t2ibias.errors import T2IBiasError
    from pytest_t2ibias.generate import GenerationResult

    cache = ImageCache(args.cache, max_lock_wait=_max_lock_wait(args))
    result = GenerationResult()
    if ranks is not None:  # torchrun / accelerate launch: this rank's share of the blocks, counts on rank 0
        from pytest_t2ibias.generate.sharding import generate_sharded

        sharded = _sharded(args, ranks, lambda: generate_sharded(requests, generator, cache, ranks))
        if not isinstance(sharded, GenerationResult):
            return sharded
        result = sharded
    try:
        with _bars(args) as bars:
            # one call per category, for one bar each: blocks never cross a category, so the blocks (and
            # the images) are the ones a single call over the whole plan makes
            for category in dict.fromkeys(r.category for r in requests) if ranks is None else ():
                planned = [r for r in requests if r.category == category]
                stage = bars.stage("generate", category, len(planned))
                part = generate_images(planned, generator, cache, progress=stage)
                result.images += part.images
                result.new += part.new
                result.cached += part.cached
                result.generated += part.generated
    except T2IBiasError as err:  # a lock waited for too long, a generator's unusable image
        _echo(f"t2ibias generate: error: {err}", file=sys.stderr)
        return 1
    _echo(
        f"{len(requests)} images of suite {suite.name!r} by {generator.fingerprint} in {cache.location}: "
        f"{result.new} new, {result.cached} cached"
    )
    if result.generated != result.new:
        _echo(f"{result.generated} generated (the new images and the cached ones in their blocks)")
    _done(args, watch, f"{len(requests)} images: {result.new} generated, {result.cached} read from the cache")
    return 0


def _max_lock_wait(args: argparse.Namespace) -> float:
    from pytest_t2ibias.generate.cache import MAX_LOCK_WAIT_S

    return MAX_LOCK_WAIT_S if args.lock_timeout is None else float(args.lock_timeout)


def _bars(args: argparse.Namespace) -> StageBars:
    """Progress bars on stderr: off with --quiet or --no-progress, else only when stderr is a terminal."""
    from pytest_t2ibias.progress import StageBars

    # sys.stderr is read now, not at import: a caller (or a test) that swaps it gets the bars
    return StageBars(sys.stderr, enabled=False if args.quiet or args.no_progress else None)


def _done(args: argparse.Namespace, watch: Stopwatch, what: str) -> None:
    """The closing ``done in`` line, on stderr so that stdout stays the table or the pure JSON."""
    if not args.quiet:
        _echo(watch.done(what), file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:
    from pytest_t2ibias.annotate.factory import load_annotator
    from pytest_t2ibias.generate import ImageCache, plan_requests
    from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
    from pytest_t2ibias.pipeline import evaluate_suite
    from pytest_t2ibias.suites import SuiteError, load_suite

    watch = Stopwatch()  # the whole command, model loading included: what the user waited for
    try:
        ranks = _launch(args)
        if not args.no_cache:
            _check_cache_folder(args.cache)
        suite = load_suite(args.suite)
        plan_requests(suite, args.images_per_prompt, args.category, args.seed)  # bad categories: before loading
        from pytest_t2ibias.registry import generators

        generators.resolve(args.model)  # an unknown model spec: one line, before the scorer loads
        annotator = load_annotator(
            args.scorer,
            suite,
            mode=args.mode,
            device=args.device,
            dtype=args.dtype,
            local_files_only=args.local_files_only,
            allow_pickle=args.allow_pickle,
            strict_labels=not args.allow_label_problems,
        )
        generator = _generator_for(args, suite, annotator)
        card = None
        if args.scorer_card:
            from pytest_t2ibias.metrics.scorer_card import check_card_scorer, load_card

            card = load_card(args.scorer_card)
            check_card_scorer(card, annotator.scorer_id, f"--scorer-card {args.scorer_card}")
    except CacheLocationError as err:
        _echo(f"t2ibias evaluate: error: {err}", file=sys.stderr)
        return 2
    except (SuiteError, ModelLoadError, ValueError, FileNotFoundError) as err:
        _echo(f"t2ibias evaluate: error: {err}", file=sys.stderr)
        return 1
    cache = None if args.no_cache else ImageCache(args.cache, max_lock_wait=_max_lock_wait(args))
    plan: dict[str, Any] = {
        "mode": args.mode,
        "images_per_prompt": args.images_per_prompt,
        "categories": args.category,
        "cache": cache,
        "seed": args.seed,
        "scorer_card": card,
    }
    if ranks is not None:  # torchrun / accelerate launch: each rank scores its share, rank 0 measures
        from pytest_t2ibias.pipeline import Evaluation, evaluate_suite_sharded

        sharded = _sharded(args, ranks, lambda: evaluate_suite_sharded(suite, generator, annotator, ranks, **plan))
        if not isinstance(sharded, Evaluation):
            return sharded
        return _print_evaluation(args, watch, sharded)
    try:
        with _bars(args) as bars:
            evaluation = evaluate_suite(suite, generator, annotator, on_stage=bars.stage, **plan)
    except ValueError as err:
        _echo(f"t2ibias evaluate: error: {err}", file=sys.stderr)
        return 1
    return _print_evaluation(args, watch, evaluation)


def _print_evaluation(args: argparse.Namespace, watch: Stopwatch, evaluation: Evaluation) -> int:
    evaluation.result = _with_aggregates(args, evaluation)
    for warning in evaluation.warnings:
        print(f"t2ibias evaluate: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        _echo(evaluation.result.to_json(indent=2))
    else:
        _echo(format_suite_table(evaluation.result))
        if evaluation.result.aggregates is not None:
            _echo("\n".join(aggregate_lines(evaluation.result.aggregates)))
    generation = evaluation.generation
    made = 0 if generation is None else generation.new
    from_cache = 0 if generation is None else generation.cached
    scored = sum(len(category.records) for category in evaluation.categories.values())
    _done(
        args, watch, f"{made + from_cache} images: {made} generated, {from_cache} read from the cache; {scored} scored"
    )
    return 0


def _launch(args: argparse.Namespace) -> RankInfo | None:
    """This process's rank under ``torchrun`` / ``accelerate launch`` (``None`` alone); a rank gets
    ``cuda:<LOCAL_RANK>`` for ``--device auto|cuda`` when CUDA is present, and ranks other than 0 are quiet."""
    from pytest_t2ibias.generate.sharding import rank_device, rank_from_env

    ranks = rank_from_env()
    if ranks is not None:
        if args.device in ("auto", "cuda"):
            import torch

            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            args.device = rank_device(args.device, ranks.local_rank, count)
        if not ranks.is_main:
            args.quiet = True
    return ranks


def _sharded(args: argparse.Namespace, ranks: RankInfo, work: Callable[[], T | None]) -> T | int:
    """``work()`` inside the launch's process group; exit status 0 on ranks other than 0 (which print
    nothing), 1 on every rank when a rank failed (rank 0 names every failure, a failed rank its own)."""
    from pytest_t2ibias.generate.sharding import ShardError, distributed

    try:
        with distributed(ranks, args.device):
            out = work()
    except ShardError as err:
        if ranks.is_main:
            _echo(f"t2ibias {args.command}: error: {err}", file=sys.stderr)
        elif err.local is not None:
            _echo(f"t2ibias {args.command}: error: rank {ranks.rank}: {err.local}", file=sys.stderr)
        return 1
    return 0 if out is None else out


def _audit_scorer(args: argparse.Namespace) -> int:
    """``t2ibias audit-scorer``: score the labelled images, write the card, print its summary."""
    from pytest_t2ibias.annotate.audit import read_audit_labels, run_audit
    from pytest_t2ibias.annotate.factory import load_annotator
    from pytest_t2ibias.errors import T2IBiasError
    from pytest_t2ibias.metrics.scorer_card import build_card, card_summary, write_card
    from pytest_t2ibias.suites import load_suite

    try:
        suite = load_suite(args.suite)
        rows = read_audit_labels(Path(args.labels), suite, args.category)
        annotator = load_annotator(
            args.scorer,
            suite,
            mode=args.mode,
            device=args.device,
            dtype=args.dtype,
            local_files_only=args.local_files_only,
            allow_pickle=args.allow_pickle,
        )
        audit = run_audit(rows, annotator, suite)
        card = build_card(audit.scorer, audit.images_hash, audit.labels, audit.terms, classes=audit.classes)
    except (T2IBiasError, ValueError, FileNotFoundError) as err:
        _echo(f"t2ibias audit-scorer: error: {err}", file=sys.stderr)
        return 1
    if not card.attributes and not card.terms:
        _echo(f"t2ibias audit-scorer: error: {args.labels}: no row has a human label or term", file=sys.stderr)
        return 1
    try:
        write_card(Path(args.output), card)
    except OSError as err:
        _echo(f"t2ibias audit-scorer: error: {clip(str(args.output))}: cannot write: {err.strerror}", file=sys.stderr)
        return 1
    _echo("\n".join(card_summary(card)))
    _echo(f"t2ibias audit-scorer: wrote {args.output}")
    return 0


def _report(args: argparse.Namespace) -> int:
    """``t2ibias report RESULTS.json -o REPORT.html``: a bad input file is a usage error (status 2)."""
    from pydantic import ValidationError

    from pytest_t2ibias.results import RunResult
    from pytest_t2ibias.suites.loader import format_validation_error

    path = Path(args.results)
    try:
        text = path.read_text(encoding="utf-8")
        run = RunResult.model_validate_json(text)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        _echo(f"t2ibias report: error: {clip(str(path))}: cannot read: {reason}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        _echo(f"t2ibias report: error: {clip(str(path))}: not a results JSON file (not UTF-8 text)", file=sys.stderr)
        return 2
    except ValidationError as err:
        source = f"{clip(str(path))}: not a t2ibias results JSON file"
        _echo(f"t2ibias report: error: {format_validation_error(source, err)}", file=sys.stderr)
        return 2
    # imported here: the HTML writer (and what it imports) costs nothing to the other commands
    from pytest_t2ibias.report.html import write_html

    try:
        written = write_html(run, args.output, full_images=args.full_images)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        _echo(f"t2ibias report: error: {clip(str(args.output))}: cannot write: {reason}", file=sys.stderr)
        return 1
    _echo(f"t2ibias report: wrote {written}")
    return 0


# -- suites: list and show the built-in suites; aggregates across categories (issue 15) -----------------


def _add_suites_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    suites = sub.add_parser(
        "suites",
        help="list the built-in suites (or show one)",
        description="List the built-in suites with their sizes; `t2ibias suites show NAME` prints one suite "
        "(a built-in name or a YAML path) as YAML, with extends / include / templates resolved.",
    )
    actions = suites.add_subparsers(dest="suites_command", metavar="ACTION")
    show = actions.add_parser("show", help="print one suite as YAML")
    show.add_argument("name", help="built-in suite name or suite YAML path")


def _suites(args: argparse.Namespace) -> int:
    import yaml

    import pytest_t2ibias.metrics.engine  # noqa: F401 (registers the check of each category's `metrics` line)
    from pytest_t2ibias.suites import SuiteError, builtin_suites, load_suite

    try:
        if args.suites_command == "show":
            suite = load_suite(args.name)
            data = suite.model_dump(mode="json", exclude_defaults=True)
            _echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110), end="")
            return 0
        rows = []
        for name in builtin_suites():
            suite = load_suite(name)
            prompts = sum(len(c.prompts) for c in suite.categories.values())
            groups = len(suite.groups())
            rows.append((name, str(len(suite.categories)), str(prompts), str(groups), suite.description.strip()))
    except SuiteError as err:
        _echo(f"t2ibias suites: error: {err}", file=sys.stderr)
        return 1
    header = ("suite", "categories", "prompts", "groups", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        _echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + clip(row[4], 70))
    return 0


def _with_aggregates(args: argparse.Namespace, evaluation: Evaluation) -> RunResult:
    """The run's result with its aggregates across the categories that declare a reference (if any)."""
    from pytest_t2ibias.metrics.aggregate import aggregate
    from pytest_t2ibias.results import AggregatesModel
    from pytest_t2ibias.suites import load_suite

    suite = load_suite(args.suite)
    if not any(suite.categories[c].compare_to for c in evaluation.categories):
        return evaluation.result
    seed = suite.seed if args.seed is None else args.seed
    found = aggregate(suite, evaluation.categories, seed=seed)
    return evaluation.result.model_copy(update={"aggregates": AggregatesModel.from_aggregates(found)})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
