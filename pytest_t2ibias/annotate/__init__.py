"""Annotators: image or caption -> per-image :class:`~pytest_t2ibias.records.ImageRecord`."""

from pytest_t2ibias.annotate.captions import UNKNOWN, CaptionAnnotator, label_paper, label_strict

__all__ = ["UNKNOWN", "CaptionAnnotator", "label_paper", "label_strict"]
