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


#: Seconds between the lines of a stage that is still running, off a terminal: CI systems kill a job after
#: minutes without output (CircleCI: 10), and a real model takes that long for one category.
HEARTBEAT_S = 30.0


class StageLines:
    """Progress of the pytest plugin's stages, as lines through pytest's terminal (issue 26, item 9).

    A bias test's setup generates and scores its category (the first one, every marked category): with a
    real model that is minutes without a line. Per stage and category (:data:`pytest_t2ibias.pipeline.
    StageProgress`):

    * off a terminal (CI logs): a line when the stage ends (``t2ibias: generate doctor: 200 images in
      12.3 s, 16.3 images/s``) and, while it runs, one every ``heartbeat_s`` seconds with the count, the
      rate and the time left;
    * on a terminal (``live`` given): the count redrawn in place, then the same closing line;
    * ``verbosity`` is pytest's: with ``-q`` only the running lines of stages that last past a heartbeat
      (what keeps a CI job alive), with ``-qq`` nothing.

    Example:
        >>> lines, now = [], [0.0]
        >>> progress = StageLines(lines.append, clock=lambda: now[0])
        >>> advance = progress.stage("generate", "doctor", 4)
        >>> now[0] = 2.0
        >>> advance(4)
        >>> lines
        ['t2ibias: generate doctor: 4 images in 2.0 s, 2.0 images/s']
    """

    def __init__(
        self,
        write_line: Callable[[str], None],
        *,
        live: Callable[[str], None] | None = None,
        verbosity: int = 0,
        heartbeat_s: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write_line = write_line
        self.live = live
        self.verbosity = verbosity
        self.heartbeat_s = heartbeat_s
        self.clock = clock

    def stage(self, stage: str, category: str, total: int) -> Callable[[int], None] | None:
        """Start ``stage`` of ``category`` (``total`` images); the callback reports ``k`` more done."""
        if self.verbosity <= -2 or total <= 0:
            return None
        label = f"t2ibias: {stage} {category}"
        started = last = self.clock()
        done = 0

        def advance(k: int) -> None:
            nonlocal done, last
            done += k
            now = self.clock()
            seconds = max(now - started, 1e-9)
            rate = done / seconds
            if done >= total:
                if self.verbosity >= 0:
                    self.write_line(f"{label}: {done} images in {seconds:.1f} s, {rate:.1f} images/s")
                return
            if self.live is not None and self.verbosity >= 0:
                self.live(f"{label}: {done}/{total} images, {rate:.1f} images/s")
            elif now - last >= self.heartbeat_s:
                left = (total - done) / rate if rate > 0 else float("inf")
                self.write_line(f"{label}: {done}/{total} images, {rate:.1f} images/s, about {left:.0f} s left")
                last = now

        return advance
