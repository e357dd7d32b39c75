"""The judge stage: metric estimates against a threshold policy and an approved baseline.

Pure and image-free: nothing here imports pytest or syrupy. It holds

* :mod:`~pytest_t2ibias.judge.stats`: exact tests, resampling, corrections, power (and the intervals);
* :mod:`~pytest_t2ibias.judge.policy`: threshold policies (pydantic, loaded from YAML);
* :mod:`~pytest_t2ibias.judge.baseline`: the approved-baseline record, parsing and staleness;
* :mod:`~pytest_t2ibias.judge.compare`: paired comparisons of a run with its baseline;
* :mod:`~pytest_t2ibias.judge.family`: the run's family of checks and its one correction;
* :mod:`~pytest_t2ibias.judge.verdicts`: checks (pass / warn / fail, with the reason) and their rules.

The names of the former ``pytest_t2ibias.judge`` module are re-exported here.
"""

from pytest_t2ibias.judge.verdicts import (
    Check,
    Direction,
    Verdict,
    direction,
    format_checks,
    judge_bounds,
    judge_regressions,
    verdict_of,
    worsening,
)

__all__ = [
    "Check",
    "Direction",
    "Verdict",
    "direction",
    "format_checks",
    "judge_bounds",
    "judge_regressions",
    "verdict_of",
    "worsening",
]
