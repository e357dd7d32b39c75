"""VQA annotator, VQAScore-style (after Lin et al., 2024): one yes/no question per element, scored by P(yes).

* presence of each term of each term list: "Is there <term> in the image?"; present when P(yes) is
  above ``presence_threshold``;
* attribute label: one question per group, built from the group's first phrase ("Does this image show
  a woman?"); the group with the highest P(yes), or ``unknown`` when that P(yes) is below
  ``label_threshold``;
* every P(yes) is kept in ``ImageRecord.scores[list_or_attribute][term_or_group]``.

P(yes) comes from a classification-head VQA model (ViLT and its kind: ``config.label2id`` names the
answers). When the answer vocabulary has both "yes" and "no", P(yes) is the softmax over those two
logits alone: the yes/no question is a two-way choice, and the other few thousand answers ("2", "red")
must not take probability mass from it. (VQAScore proper reads P("Yes") off a generative model's
answer likelihood; on a closed answer set the two-way softmax is the analogue, not the same number.)
A head with "yes" but no "no" gets the sigmoid of the yes logit (ViLT's VQA head is trained per answer
with binary cross-entropy, so that is its own P(yes)).

Specs: ``tiny`` (a random-weight ViLT built in memory, offline), or a hub id / local folder saved with
``save_pretrained`` (``dandelin/vilt-b32-finetuned-vqa``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

# hub_offline, checkpoint_source and load_pretrained are re-exported: they lived here before _hf.py
from pytest_t2ibias._hf import checkpoint_source as checkpoint_source
from pytest_t2ibias._hf import hub_offline as hub_offline
from pytest_t2ibias._hf import load_pretrained as load_pretrained
from pytest_t2ibias.annotate.base import AnnotationInput, check_annotate_inputs, record_for, texts_hash
from pytest_t2ibias.annotate.captions import UNKNOWN
from pytest_t2ibias.generate.diffusers_adapter import resolve_device, resolve_dtype
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import Suite

if TYPE_CHECKING:
    import torch
    from PIL import Image

TERM_QUESTION = "Is there {term} in the image?"
GROUP_QUESTION = "Does this image show {subject}?"

TINY_VQA_SEED = 0
#: 64x64 works: ViLT interpolates its patch position embeddings to whatever grid the image gives.
TINY_VQA_IMAGE_SIZE = 64
TINY_VQA_PATCH_SIZE = 16
#: Wider than transformers' 0.02 so the tiny model's P(yes) depends on image and question and falls on
#: both sides of 0.5 (about 0.46-0.52 on the tiny pipeline's images): some terms present, some absent.
TINY_VQA_INIT_RANGE = 0.1
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

#: ViLT draws a random patch order (``torch.multinomial``) in every forward pass; a fixed CPU seed makes
#: the float sums, hence the scores, repeat bit for bit and leaves the caller's RNG untouched.
_FORWARD_SEED = 0
_PHOTO_PREFIX = re.compile(r"^(?:a|an)\s+(?:photo|picture|image)\s+(?:of|with)\s+", re.IGNORECASE)
_BERT_PIECES = re.compile(r"\w+|[^\w\s]")


def term_question(term: str) -> str:
    """The presence question for a term (a stem loses its ``*``)."""
    return TERM_QUESTION.format(term=term.rstrip("*"))


def group_question(phrase: str) -> str:
    """The label question for a group, from its first phrase ("a photo of a woman" -> "a woman")."""
    return GROUP_QUESTION.format(subject=_PHOTO_PREFIX.sub("", phrase.strip()))


def yes_no_indices(label2id: dict[str, int], model_id: str) -> tuple[int, int | None]:
    """The logit indices of the "yes" and (when present) "no" answers.

    Raises:
        ValueError: the model has no "yes" answer (not a yes/no classification-head VQA model).
    """
    lowered = {str(label).strip().lower(): int(index) for label, index in (label2id or {}).items()}
    if "yes" not in lowered:
        shown = sorted(map(str, label2id or {}))[:8]
        raise ValueError(
            f"VQA model {model_id!r} has no 'yes' answer in `config.label2id` (labels start {shown}); "
            "the VQA annotator needs a classification-head VQA model such as ViLT "
            "(dandelin/vilt-b32-finetuned-vqa); for an image-to-text model use 'captioner:<id>'"
        )
    return lowered["yes"], lowered.get("no")


def yes_probability(logits: torch.Tensor, yes: int, no: int | None) -> torch.Tensor:
    """P(yes) per row: softmax over the (yes, no) logits, or sigmoid(yes) without a "no" answer."""
    import torch

    logits = logits.float()
    if no is None:
        return torch.sigmoid(logits[:, yes])
    return torch.softmax(logits[:, [yes, no]], dim=-1)[:, 0]


class VqaAnnotator:
    """Presence and attribute labels from a yes/no VQA model's P(yes).

    Args:
        suite: the suite whose term lists and groups become questions.
        model: a transformers VQA model with a classification head (``config.label2id`` holds "yes").
        processor: its processor (``image_processor`` and ``tokenizer``).
        model_id: names the model in :attr:`scorer_id` (hub id, folder, or ``tiny``).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``auto`` (fp16 on CUDA, fp32 elsewhere), ``fp32``, ``fp16``, ``bf16`` or a ``torch.dtype``.
        batch_size: (image, question) pairs per forward pass; default 256 on CUDA, 64 elsewhere.
        presence_threshold: a term is present when its P(yes) is above this.
        label_threshold: the best group's P(yes) must reach this, or the label is ``unknown``.
    """

    def __init__(
        self,
        suite: Suite,
        model: Any,
        processor: Any,
        *,
        model_id: str = "custom",
        device: str = "auto",
        dtype: str | torch.dtype = "auto",
        batch_size: int | None = None,
        presence_threshold: float = 0.5,
        label_threshold: float = 0.5,
    ) -> None:
        for name, value in (("presence_threshold", presence_threshold), ("label_threshold", label_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {value}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        self.suite = suite
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device) if isinstance(dtype, str) else dtype
        self.batch_size = batch_size or (256 if self.device.startswith("cuda") else 64)
        self.presence_threshold = presence_threshold
        self.label_threshold = label_threshold
        self._yes, self._no = yes_no_indices(model.config.label2id, model_id)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.processor = processor
        # ViLT's text position table is short (40); longer questions are cut rather than crash the model
        self._max_text = getattr(model.config, "max_position_embeddings", None)
        questions = texts_hash(TERM_QUESTION, GROUP_QUESTION)
        self.scorer_id = f"vqa:{model_id}|presence={presence_threshold}|label={label_threshold}|questions={questions}"

    def _questions(self, category: str) -> list[tuple[str, str, str]]:
        """``(term list or attribute, term or group, question)`` for every question of a category."""
        spec = self.suite.categories[category]
        slots = [(name, term, term_question(term)) for name in spec.list_names() for term in spec.term_list(name)]
        for attribute in spec.annotated_attributes():
            groups = self.suite.attributes[attribute].groups
            slots += [(attribute, group, group_question(g.phrases[0])) for group, g in groups.items()]
        return slots

    def yes_probabilities(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> NDArray[np.float64]:
        """P(yes) of every question about every image, shape ``(len(images), len(questions))``.

        Pairs go image-major through the model, ``batch_size`` (image, question) pairs per forward pass;
        an image is preprocessed once per batch it appears in. ``on_progress(k)`` after a forward pass
        that finishes ``k`` more images (all their questions asked).
        """
        import torch

        out = np.zeros((len(images), len(questions)), dtype=np.float64)
        pairs = [(i, q) for i in range(len(images)) for q in range(len(questions))]
        rgb = [image.convert("RGB") for image in images]
        done = 0  # images whose every question is answered, for on_progress
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.default_generator.manual_seed(_FORWARD_SEED)
            for start in range(0, len(pairs), self.batch_size):
                batch = pairs[start : start + self.batch_size]
                probs = self._forward(rgb, questions, batch)
                for (i, q), p in zip(batch, probs.tolist(), strict=True):
                    out[i, q] = p
                if on_progress is not None:
                    # pairs are image-major: the images before the next pair's image are finished
                    done_now = (start + len(batch)) // len(questions)
                    if done_now > done:
                        on_progress(done_now - done)
                        done = done_now
        if on_progress is not None and done < len(images):  # no questions at all: nothing to ask, all done
            on_progress(len(images) - done)
        return out

    def _forward(
        self, images: Sequence[Image.Image], questions: Sequence[str], pairs: Sequence[tuple[int, int]]
    ) -> torch.Tensor:
        import torch

        unique = list(dict.fromkeys(i for i, _ in pairs))
        row = {image_index: n for n, image_index in enumerate(unique)}
        pixels = self.processor.image_processor(images=[images[i] for i in unique], return_tensors="pt")
        take = [row[i] for i, _ in pairs]
        text = self.processor.tokenizer(
            [questions[q] for _, q in pairs],
            padding=True,
            truncation=self._max_text is not None,
            max_length=self._max_text,
            return_tensors="pt",
        )
        inputs = {key: value[take] for key, value in pixels.items() if isinstance(value, torch.Tensor)} | dict(text)
        inputs = {
            key: value.to(self.device, self.dtype) if value.is_floating_point() else value.to(self.device)
            for key, value in inputs.items()
        }
        logits = self.model(**inputs).logits
        return yes_probability(logits, self._yes, self._no).cpu()

    def annotate(
        self,
        items: Sequence[AnnotationInput],
        category: str,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[ImageRecord]:
        """One record per item: labels, presence and every P(yes); seed, prompt and image path kept.
        ``on_progress(k)`` as ``k`` more images have every question answered."""
        check_annotate_inputs(items, category, list(self.suite.categories))
        if not items:
            return []
        spec = self.suite.categories[category]
        slots = self._questions(category)
        # a term in several lists ("doctor" in explicit and keywords) is asked once
        unique = list(dict.fromkeys(question for *_, question in slots))
        column = {question: n for n, question in enumerate(unique)}
        probs = self.yes_probabilities([item.image for item in items], unique, on_progress=on_progress)

        records = []
        for i, item in enumerate(items):
            scores: dict[str, dict[str, float]] = {}
            for key, name, question in slots:
                scores.setdefault(key, {})[name] = float(probs[i, column[question]])
            present = {
                n: [t for t in spec.term_list(n) if scores[n][t] > self.presence_threshold] for n in spec.list_names()
            }
            labels = {}
            for attribute in spec.annotated_attributes():
                group_scores = scores[attribute]
                best = max(group_scores, key=group_scores.__getitem__)  # first group wins a tie
                labels[attribute] = best if group_scores[best] >= self.label_threshold else UNKNOWN
            records.append(record_for(item, category, labels, present, scores=scores))
        return records

    @classmethod
    def from_spec(
        cls,
        name: str,
        suite: Suite,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        local_files_only: bool = False,
        presence_threshold: float = 0.5,
        label_threshold: float = 0.5,
        allow_pickle: bool = False,
    ) -> VqaAnnotator:
        """The annotator for ``tiny``, a hub id or a local folder.

        Raises:
            ModelLoadError: the checkpoint is not available (offline, or the path does not exist).
            ValueError: the model has no "yes" answer, or a setting is invalid.
        """
        resolve_device(device)  # a bad device fails before any loading
        if name == "tiny":
            model, processor = build_tiny_vqa(suite)
        else:
            from transformers import AutoModelForVisualQuestionAnswering, AutoProcessor

            model, processor = load_pretrained(
                name,
                "VQA model",
                [AutoModelForVisualQuestionAnswering, AutoProcessor],
                local_files_only,
                allow_pickle=allow_pickle,
            )
        return cls(
            suite,
            model,
            processor,
            model_id=name,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            presence_threshold=presence_threshold,
            label_threshold=label_threshold,
        )


def suite_texts(suite: Suite) -> list[str]:
    """Every term and phrase of a suite (group terms and phrases, term lists, context lists), in order."""
    texts: list[str] = []
    for attribute in suite.attributes.values():
        for group in attribute.groups.values():
            texts += group.terms + group.phrases
    for spec in suite.categories.values():
        for name in spec.list_names():
            texts += spec.term_list(name)
    return texts


def bert_vocab(texts: Iterable[str], specials: Sequence[str] = BERT_SPECIAL_TOKENS) -> dict[str, int]:
    """A WordPiece vocabulary: the special tokens, then every lower-cased word and punctuation mark, sorted.

    Words are split the way BERT's pre-tokenizer splits them (runs of word characters, single
    punctuation marks), so every word of ``texts`` encodes to one token.
    """
    words = sorted({piece for text in texts for piece in _BERT_PIECES.findall(text.lower())} - set(specials))
    return {token: index for index, token in enumerate([*specials, *words])}


def tiny_bert_tokenizer(texts: Iterable[str], extra_specials: Sequence[str] = (), **kwargs: Any) -> Any:
    """A transformers ``BertTokenizer`` over :func:`bert_vocab` of ``texts``, built in memory."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=bert_vocab(texts, (*BERT_SPECIAL_TOKENS, *extra_specials)), **kwargs)


def build_tiny_vqa(suite: Suite) -> tuple[Any, Any]:
    """A random-weight ``ViltForQuestionAnswering`` (64x64 images, answers yes/no) and its processor.

    About 50k parameters: hidden size 32, 2 layers, 4 heads, 16x16 patches (a 4x4 grid), a 40-token
    text table; the tokenizer's vocabulary is the suite's words plus the question templates. 64x64 is
    possible because ViLT interpolates its position embeddings to the image's patch grid. Identical
    on every call (weights drawn under :data:`TINY_VQA_SEED` in a forked RNG).
    """
    import torch
    from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessor, ViltProcessor

    templates = [TERM_QUESTION.format(term=""), GROUP_QUESTION.format(subject="")]
    tokenizer = tiny_bert_tokenizer([*suite_texts(suite), *templates])
    config = ViltConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=40,
        image_size=TINY_VQA_IMAGE_SIZE,
        patch_size=TINY_VQA_PATCH_SIZE,
        initializer_range=TINY_VQA_INIT_RANGE,
        pad_token_id=tokenizer.pad_token_id,
        id2label={0: "yes", 1: "no"},
        label2id={"yes": 0, "no": 1},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_VQA_SEED)
        model = ViltForQuestionAnswering(config)
    # ViLT's default size divisor (32) is a multiple of the patch size, so every resized image tiles
    image_processor = ViltImageProcessor(size={"shortest_edge": TINY_VQA_IMAGE_SIZE})
    return model.eval(), ViltProcessor(image_processor=image_processor, tokenizer=tokenizer)
