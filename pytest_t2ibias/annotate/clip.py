"""CLIP zero-shot annotator: image embeddings against the suite's group phrases and term lists.

* attribute label: the group whose prompt ensemble (mean of its unit phrase embeddings) is most
  similar to the image; ``unknown`` when a people category shows no person (person vs. no-person
  contrast) or when the top-two similarity margin is below ``min_margin``;
* presence of each term of each list: similarity to "a photo containing <term>" minus similarity to a
  neutral "a photo", above ``presence_threshold``;
* the unit image embedding (for the Vendi Score) and CLIPScore against the image's prompt.

Text embeddings are computed once per annotator and reused for every image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.annotate.base import AnnotationInput, check_annotate_inputs, record_for, texts_hash
from pytest_t2ibias.annotate.captions import UNKNOWN
from pytest_t2ibias.annotate.clip_backends import ClipBackend
from pytest_t2ibias.metrics.embedding import CLIPSCORE_WEIGHT
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import Suite

PERSON_PHRASES = ("a photo of a person", "a photo of people", "a photo of a human face")
NO_PERSON_PHRASES = ("a photo with no people", "an empty scene", "a photo of an object")
NEUTRAL_PHRASE = "a photo"
TERM_TEMPLATE = "a photo containing {term}"


@dataclass(frozen=True)
class ClipThresholds:
    """Decision thresholds, recorded in the scorer id (they change the labels)."""

    min_margin: float = 0.0
    person_threshold: float = 0.0
    presence_threshold: float = 0.0


class ClipAnnotator:
    """Zero-shot labels, presence, embeddings and CLIPScore from one CLIP backend."""

    def __init__(self, suite: Suite, backend: ClipBackend, thresholds: ClipThresholds | None = None) -> None:
        self.suite = suite
        self.backend = backend
        self.thresholds = thresholds or ClipThresholds()
        t = self.thresholds
        phrases = texts_hash(*PERSON_PHRASES, *NO_PERSON_PHRASES, NEUTRAL_PHRASE, TERM_TEMPLATE)
        self.scorer_id = (
            f"clip:{backend.id}|margin={t.min_margin}|person={t.person_threshold}|presence={t.presence_threshold}"
            f"|phrases={phrases}"
        )
        self._text_cache: dict[str, NDArray[np.float32]] = {}

    @property
    def scoring_batch(self) -> int:
        """Images per forward pass: labelling in chunks of a multiple of it gives the records of one call."""
        return int(self.backend.batch_size)

    def _texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            for text, row in zip(missing, self.backend.encode_texts(missing), strict=True):
                self._text_cache[text] = row
        return np.stack([self._text_cache[t] for t in texts])

    def _prototype(self, phrases: Sequence[str]) -> NDArray[np.float32]:
        mean = self._texts(phrases).mean(axis=0)
        out: NDArray[np.float32] = mean / np.linalg.norm(mean)
        return out

    def annotate(
        self,
        items: Sequence[AnnotationInput],
        category: str,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[ImageRecord]:
        """One record per item; ``on_progress(k)`` after each batch of ``k`` images is encoded (the image
        forward passes are the slow part; the rest is a few matrix products)."""
        check_annotate_inputs(items, category, list(self.suite.categories))
        if not items:
            return []
        spec = self.suite.categories[category]
        images = self.backend.encode_images([item.image for item in items], on_progress=on_progress)
        prompts = self._texts([item.prompt for item in items])
        clip = CLIPSCORE_WEIGHT * np.maximum((images * prompts).sum(axis=1), 0.0)

        person_ok = np.ones(len(items), dtype=bool)
        person_margin = None
        if spec.people:
            person_margin = images @ self._prototype(PERSON_PHRASES) - images @ self._prototype(NO_PERSON_PHRASES)
            person_ok = person_margin >= self.thresholds.person_threshold

        labels: list[dict[str, str]] = [{} for _ in items]
        scores: list[dict[str, dict[str, float]]] = [{} for _ in items]
        attributes = spec.annotated_attributes()
        for name in attributes:
            groups = self.suite.attributes[name].groups
            names = list(groups)
            protos = np.stack([self._prototype(groups[g].phrases) for g in names])
            sims = images @ protos.T
            order = np.argsort(-sims, axis=1)
            for i in range(len(items)):
                top = order[i, 0]
                margin = sims[i, top] - sims[i, order[i, 1]] if len(names) > 1 else np.inf
                known = bool(person_ok[i]) and margin >= self.thresholds.min_margin
                labels[i][name] = names[top] if known else UNKNOWN
                scores[i][name] = {g: float(s) for g, s in zip(names, sims[i], strict=True)}
        if person_margin is not None:
            for i in range(len(items)):
                scores[i]["person"] = {"margin": float(person_margin[i])}

        present: list[dict[str, list[str]]] = [{} for _ in items]
        neutral = images @ self._texts([NEUTRAL_PHRASE])[0]
        for list_name in spec.list_names():
            terms = spec.term_list(list_name)
            term_emb = self._texts([TERM_TEMPLATE.format(term=t.rstrip("*")) for t in terms])
            contrast = images @ term_emb.T - neutral[:, None]
            for i in range(len(items)):
                hits = contrast[i] > self.thresholds.presence_threshold
                present[i][list_name] = [t for t, hit in zip(terms, hits, strict=True) if hit]
                scores[i][list_name] = {t: float(c) for t, c in zip(terms, contrast[i], strict=True)}

        return [
            record_for(
                item,
                category,
                labels[i],
                present[i],
                scores=scores[i],
                embedding=[float(x) for x in images[i]],
                clip_score=float(clip[i]),
            )
            for i, item in enumerate(items)
        ]
