"""The ``t2ibias`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pytest_t2ibias import __version__
from pytest_t2ibias._io import clip, one_line
from pytest_t2ibias.errors import SettingsError
from pytest_t2ibias.progress import Stopwatch
from pytest_t2ibias.report.table import format_suite_table
from pytest_t2ibias.types import MODES

if TYPE_CHECKING:
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.progress import StageBars
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

_MODEL_HELP = "hub id, local pipeline folder, 'tiny' (offline) or 'synthetic[:CONFIG.yaml]' (known bias)"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``t2ibias generate: error: argument --x: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


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
        help="measure the usable rows even when some rows could not be read (no image name or caption, or "
        "an image name given twice); without it such a file exits with status 1",
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
    gen.add_argument("--cache", default=".t2ibias_cache", help="image cache folder")
    gen.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    gen.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="weights dtype")
    gen.add_argument("--steps", type=int, default=None, help="inference steps (default 30; tiny: 4)")
    gen.add_argument("--guidance-scale", type=float, default=None, help="guidance scale (default 7.5)")
    gen.add_argument("--batch-size", type=int, default=None, help="images per pipeline call (default 4; tiny: 8)")
    gen.add_argument("--seed", type=int, default=None, help="suite seed override (default: the suite's seed)")
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
        help="tiny, open_clip:ARCH/PRETRAINED, hf:ID, vqa:ID, captioner:ID, labels:PATH, synthetic",
    )
    ev.add_argument(
        "--images-per-prompt", type=_images_per_prompt, default=None, help="default: the suite's value (1 to 100000)"
    )
    ev.add_argument("--category", action="append", default=None, help="only this category (repeatable)")
    ev.add_argument("--mode", choices=MODES, default="strict", help="strict (default, for gating) or paper")
    ev.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    ev.add_argument("--cache", default=".t2ibias_cache", help="image cache folder")
    ev.add_argument("--no-cache", action="store_true", help="keep images in memory only")
    ev.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    ev.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="dtype of both models")
    ev.add_argument("--steps", type=int, default=None, help="inference steps (default 30; tiny: 4)")
    ev.add_argument("--batch-size", type=int, default=None, help="images per pipeline call")
    ev.add_argument("--seed", type=int, default=None, help="suite seed override")
    ev.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    ev.add_argument(
        "--allow-pickle", action="store_true", help="load pickle (.bin) weights (default: safetensors only)"
    )
    _add_quiet_options(ev)

    report = sub.add_parser(
        "report",
        help="render a saved results JSON as an HTML page",
        description="Render a results JSON file (the output of `t2ibias evaluate --format json`, "
        "`t2ibias replay --format json` or pytest's --t2i-report) as one self-contained HTML page.",
    )
    report.add_argument("results", metavar="RESULTS.json", help="the results JSON file")
    report.add_argument("-o", "--output", required=True, metavar="REPORT.html", help="the HTML file to write")
    report.add_argument(
        "--full-images", action="store_true", help="embed the images at full size (default: thumbnails)"
    )
    return parser


def _add_quiet_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-progress", action="store_true", help="no progress bars (the 'done in' line stays)")
    command.add_argument(
        "-q", "--quiet", action="store_true", help="nothing on stderr but warnings and errors: no bars, no 'done in'"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "generate":
            return _generate(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "report":
            return _report(args)
    except BrokenPipeError:
        # `t2ibias replay ... | head`: the reader left; stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


def _replay(args: argparse.Namespace) -> int:
    from pytest_t2ibias.replay import CaptionFileError, read_caption_csv, replay_table
    from pytest_t2ibias.suites import SuiteError, load_suite

    try:
        suite = load_suite(args.suite)
        table = read_caption_csv(args.captions)
    except (CaptionFileError, SuiteError) as err:
        print(f"t2ibias replay: error: {err}", file=sys.stderr)
        return 1
    if table.dropped_lines:
        print(
            f"t2ibias replay: {table.path}: {table.dropped} rows dropped (no image name or no caption): "
            f"{_lines(table.dropped_lines)}",
            file=sys.stderr,
        )
    if table.duplicate_lines:
        print(
            f"t2ibias replay: {table.path}: {table.duplicates} duplicate rows dropped (image name already on an "
            f"earlier line; the first is kept): {_lines(table.duplicate_lines)}",
            file=sys.stderr,
        )
    if table.bad_rows and not args.allow_bad_rows:
        print(
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
        print(
            f"t2ibias replay: {len(unmatched)} rows match no category of suite {suite.name!r}: {names}{more}",
            file=sys.stderr,
        )
    if args.format == "json":
        print(result.to_json(indent=2))
    else:
        print(format_suite_table(result))
    return 0


def _lines(numbers: Sequence[int], shown: int = 5) -> str:
    """``lines 3, 7, 9`` (the first ``shown`` of them, then how many more)."""
    head = ", ".join(str(n) for n in numbers[:shown])
    more = f", ... ({len(numbers) - shown} more)" if len(numbers) > shown else ""
    return f"line{'s' if len(numbers) > 1 else ''} {head}{more}"


def _check_cache_folder(cache: str) -> None:
    """``--cache`` must be a folder or a path one can be made at: a file there (or above) is an error."""
    path = Path(cache)
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                what = "is a file" if existing == path else f"cannot be made: {existing} is a file"
                raise SettingsError(f"--cache {clip(cache)}: {what}, not a folder")
            return


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


def _generate(args: argparse.Namespace) -> int:
    from pytest_t2ibias.generate import ImageCache, generate_images, plan_requests
    from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
    from pytest_t2ibias.suites import SuiteError, load_suite

    watch = Stopwatch()  # the whole command, model loading included: what the user waited for
    try:
        _check_cache_folder(args.cache)
        suite = load_suite(args.suite)
        requests = plan_requests(suite, args.images_per_prompt, args.category, args.seed)
        generator = _load_generator(args, suite)
    except (SuiteError, ModelLoadError, ValueError) as err:
        print(f"t2ibias generate: error: {err}", file=sys.stderr)
        return 1
    from pytest_t2ibias.generate import GenerationResult

    cache = ImageCache(args.cache)
    result = GenerationResult()
    with _bars(args) as bars:
        # one call per category, for one bar each: blocks never cross a category, so the blocks (and
        # the images) are the ones a single call over the whole plan makes
        for category in dict.fromkeys(r.category for r in requests):
            planned = [r for r in requests if r.category == category]
            part = generate_images(planned, generator, cache, progress=bars.stage("generate", category, len(planned)))
            result.images += part.images
            result.new += part.new
            result.cached += part.cached
            result.generated += part.generated
    print(
        f"{len(requests)} images of suite {suite.name!r} by {generator.fingerprint} in {cache.root}: "
        f"{result.new} new, {result.cached} cached"
    )
    if result.generated != result.new:
        print(f"{result.generated} generated (the new images and the cached ones in their blocks)")
    _done(args, watch, f"{len(requests)} images generated ({result.cached} from the cache)")
    return 0


def _bars(args: argparse.Namespace) -> StageBars:
    """Progress bars on stderr: off with --quiet or --no-progress, else only when stderr is a terminal."""
    from pytest_t2ibias.progress import StageBars

    # sys.stderr is read now, not at import: a caller (or a test) that swaps it gets the bars
    return StageBars(sys.stderr, enabled=False if args.quiet or args.no_progress else None)


def _done(args: argparse.Namespace, watch: Stopwatch, what: str) -> None:
    """The closing ``done in`` line, on stderr so that stdout stays the table or the pure JSON."""
    if not args.quiet:
        print(watch.done(what), file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:
    from pytest_t2ibias.annotate.factory import load_annotator
    from pytest_t2ibias.generate import ImageCache, plan_requests
    from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
    from pytest_t2ibias.pipeline import evaluate_suite
    from pytest_t2ibias.suites import SuiteError, load_suite

    watch = Stopwatch()  # the whole command, model loading included: what the user waited for
    try:
        if not args.no_cache:
            _check_cache_folder(args.cache)
        suite = load_suite(args.suite)
        plan_requests(suite, args.images_per_prompt, args.category, args.seed)  # bad categories: before loading
        generator = _load_generator(args, suite)
        annotator = load_annotator(
            args.scorer,
            suite,
            mode=args.mode,
            device=args.device,
            dtype=args.dtype,
            local_files_only=args.local_files_only,
        )
    except (SuiteError, ModelLoadError, ValueError, FileNotFoundError) as err:
        print(f"t2ibias evaluate: error: {err}", file=sys.stderr)
        return 1
    cache = None if args.no_cache else ImageCache(args.cache)
    try:
        with _bars(args) as bars:
            evaluation = evaluate_suite(
                suite,
                generator,
                annotator,
                mode=args.mode,
                images_per_prompt=args.images_per_prompt,
                categories=args.category,
                cache=cache,
                seed=args.seed,
                on_stage=bars.stage,
            )
    except ValueError as err:
        print(f"t2ibias evaluate: error: {err}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(evaluation.result.to_json(indent=2))
    else:
        print(format_suite_table(evaluation.result))
    generation = evaluation.generation
    made = 0 if generation is None else generation.new + generation.cached
    from_cache = 0 if generation is None else generation.cached
    scored = sum(len(category.records) for category in evaluation.categories.values())
    _done(args, watch, f"{made} images generated ({from_cache} from the cache), {scored} scored")
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
        print(f"t2ibias report: error: {clip(str(path))}: cannot read: {reason}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"t2ibias report: error: {clip(str(path))}: not a results JSON file (not UTF-8 text)", file=sys.stderr)
        return 2
    except ValidationError as err:
        source = f"{clip(str(path))}: not a t2ibias results JSON file"
        print(f"t2ibias report: error: {format_validation_error(source, err)}", file=sys.stderr)
        return 2
    # imported here: the HTML writer (and what it imports) costs nothing to the other commands
    from pytest_t2ibias.report.html import write_html

    try:
        written = write_html(run, args.output, full_images=args.full_images)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        print(f"t2ibias report: error: {clip(str(args.output))}: cannot write: {reason}", file=sys.stderr)
        return 1
    print(f"t2ibias report: wrote {written}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
