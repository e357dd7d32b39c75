"""CLIP annotator throughput against a hand-written batched forward pass and a one-image loop.

    python benchmarks/bench_annotate.py [--images 64] [--batch-size 32] [--rounds 3]

ViT-B-32 size with random weights (open_clip, ``pretrained=None``) on this CPU, in one run:
(1) the annotator (images -> records: labels, presence of every term list, embeddings, CLIPScore)
against a hand-written batched ``encode_image`` pass over the same images with the same batch size:
target >= 0.9 of its images/s; (2) against the one-image-at-a-time loop most bias notebooks use;
(3) the annotator's images/s as the batch size grows. Rounds alternate the variants; medians reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import open_clip
import torch
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.clip import ClipAnnotator
from pytest_t2ibias.annotate.clip_backends import open_clip_backend
from pytest_t2ibias.suites import load_suite


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scaling", type=int, nargs="*", default=[1, 4, 16, 32, 64])
    args = parser.parse_args()

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    suite = load_suite("t2i-biasbench")
    backend = open_clip_backend(model, preprocess, tokenizer, "ViT-B-32/random", "cpu", torch.float32, args.batch_size)
    annotator = ClipAnnotator(suite, backend)

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(args.images)]
    prompt = suite.categories["doctor"].prompts[0]
    items = [AnnotationInput(f"doctor_{i}", image, prompt, seed=i) for i, image in enumerate(images)]
    annotator.annotate(items[:2], "doctor")  # warm-up; also embeds the suite's texts once, as a real run does

    def hand_batched() -> None:
        # The fastest plain way to get the same image embeddings: preprocess, stack, encode, normalise.
        for start in range(0, len(images), args.batch_size):
            pixels = torch.stack([preprocess(image) for image in images[start : start + args.batch_size]])
            with torch.inference_mode():
                features = model.encode_image(pixels)
                (features / features.norm(dim=-1, keepdim=True)).numpy()

    text = tokenizer([prompt])
    with torch.inference_mode():
        text_features = model.encode_text(text)

    def one_at_a_time() -> None:
        # The notebook way: one image per forward pass.
        for image in images:
            with torch.inference_mode():
                features = model.encode_image(preprocess(image).unsqueeze(0))
                (features / features.norm(dim=-1, keepdim=True) @ text_features.T).item()

    variants = {
        "annotator": lambda: annotator.annotate(items, "doctor"),
        "hand batched": hand_batched,
        "one at a time": one_at_a_time,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            times[name].append(timed(variants[name]))
    rate = {name: args.images / statistics.median(values) for name, values in times.items()}

    print(
        f"ViT-B-32, random weights, {args.images} images 256x256 -> 224, batch {args.batch_size}, "
        f"{args.rounds} rounds, torch threads {torch.get_num_threads()}"
    )
    for name, value in rate.items():
        print(f"  {name:<14} {value:7.1f} img/s   (runs s: {', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"(1) annotator / hand-written batched pass: {rate['annotator'] / rate['hand batched']:.3f}  (target >= 0.9)")
    print(f"(2) annotator / one-image-at-a-time loop:  {rate['annotator'] / rate['one at a time']:.2f}x")
    print("(3) annotator images/s by batch size:")
    for size in args.scaling:
        backend.batch_size = size
        seconds = statistics.median(timed(lambda: annotator.annotate(items, "doctor")) for _ in range(2))
        print(f"    batch {size:>3}: {args.images / seconds:7.1f} img/s")


if __name__ == "__main__":
    main()
