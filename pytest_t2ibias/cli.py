"""The ``t2ibias`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from pytest_t2ibias.report.table import format_replay_table
from pytest_t2ibias.types import MODES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2ibias", description="Bias metrics for text-to-image models.")
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("replay", help="compute every metric from a caption CSV (image name, caption)")
    replay.add_argument("captions", help="CSV file: image file name, then caption, per row")
    replay.add_argument("--mode", choices=MODES, default="paper", help="paper reproduces published numbers")
    replay.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    replay.add_argument("--model-name", default=None, help="model name in the output (default: file stem)")
    replay.add_argument("--suite", default="t2i-biasbench", help="built-in suite name or suite YAML path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
    except BrokenPipeError:
        # `t2ibias replay ... | head`: the reader left; stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


def _replay(args: argparse.Namespace) -> int:
    from pytest_t2ibias.replay import CaptionFileError, replay
    from pytest_t2ibias.suites import SuiteError, load_suite

    try:
        suite = load_suite(args.suite)
        result = replay(args.captions, suite, mode=args.mode, model_name=args.model_name)
    except (CaptionFileError, SuiteError) as err:
        print(f"t2ibias replay: error: {err}", file=sys.stderr)
        return 1
    if result.unmatched:
        names = ", ".join(r.image for r in result.unmatched[:5])
        more = "" if len(result.unmatched) <= 5 else f", ... ({len(result.unmatched) - 5} more)"
        print(
            f"t2ibias replay: {len(result.unmatched)} rows match no category of suite {suite.name!r}: {names}{more}",
            file=sys.stderr,
        )
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_replay_table(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
