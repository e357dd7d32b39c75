"""Type aliases shared across stages."""

from __future__ import annotations

from typing import Literal

#: ``paper`` reproduces the published numbers; ``strict`` fixes the paper's known defects.
Mode = Literal["paper", "strict"]
MODES: tuple[Mode, ...] = ("paper", "strict")

#: A metric value: a number, a distribution (group -> share), or ``None`` (with a reason elsewhere).
MetricValue = float | dict[str, float] | None
