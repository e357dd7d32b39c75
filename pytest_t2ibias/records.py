"""The per-image record: what every annotator produces and every metric consumes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ImageRecord(BaseModel):
    """One annotated image.

    ``labels`` maps each annotated attribute to a declared group, or to the attribute's unmatched
    label (``unknown``; ``other`` for the paper's species lists). ``present`` maps each term list of the
    category to the terms found, in list order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_id: str
    category: str
    caption: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    present: dict[str, list[str]] = Field(default_factory=dict)
    seed: int | None = None
    prompt: str | None = None
    image_path: str | None = None
    scores: dict[str, dict[str, float]] = Field(default_factory=dict)
    embedding: list[float] | None = None
    clip_score: float | None = None
