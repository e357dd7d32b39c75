"""Progress bars of the ``t2ibias`` command: one labelled bar per stage and category, on stderr.

The library never draws anything: its stages take a plain ``on_progress(k)`` callback (and
:func:`pytest_t2ibias.pipeline.evaluate_suite` an ``on_stage`` factory of them); this module turns those
callbacks into tqdm bars for the command line, and only there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

#: ``generate doctor: 40/64 images |####      | 00:12<00:07``: the label and the count first, so a bar
#: cut short by a narrow terminal still says what it counts.
BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} images |{bar}| {elapsed}<{remaining}"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class StageBars:
    """One bar at a time, per stage and category; a new stage closes the previous stage's bar.

    ``enabled=None`` draws only on a terminal: a log file or a CI capture would otherwise fill with the
    bars' carriage-return redraws. Disabled, :meth:`stage` returns ``None`` and nothing is written.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with StageBars(out, enabled=True) as bars:
        ...     advance = bars.stage("score", "doctor", 4)
        ...     advance(4)
        >>> "score doctor: 4/4 images" in out.getvalue()
        True
        >>> StageBars(io.StringIO()).stage("score", "doctor", 4) is None  # not a terminal
        True
    """

    def __init__(self, stream: TextIO, *, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self._bar: Any = None

    def stage(self, stage: str, category: str, total: int) -> Callable[[int], None] | None:
        """Open the bar of ``stage`` for ``category`` (``total`` images); the callback advances it."""
        self.close()
        if not self.enabled:
            return None
        from tqdm import tqdm

        self._bar = tqdm(
            total=total,
            desc=f"{stage} {category}",
            unit="images",
            file=self.stream,
            bar_format=BAR_FORMAT,
            leave=True,  # each finished stage stays on screen: the run's log of what took how long
        )
        update: Callable[[int], None] = self._bar.update
        return update

    def close(self) -> None:
        """Close the open bar, if any (it is drawn once more, at its final count)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StageBars:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Stopwatch:
    """Seconds since it was made (monotonic: a clock change does not skew it)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._start

    def done(self, what: str) -> str:
        """``done in 12.3 s: <what>``, the closing line of a command."""
        return f"done in {self.seconds:.1f} s: {what}"
