"""The CUDA path, measured side by side in one run: our stages against the raw library loops.

    python benchmarks/bench_gpu.py                      # CUDA: SD-1.5 shapes at 512x512, ViT-L/14, fp16
    python benchmarks/bench_gpu.py --reduced --quick    # any machine: tiny shapes, fp32 on the CPU (CI)

Models with random weights, built in memory (no download): a Stable-Diffusion-1.5-shaped pipeline
(UNet 320/640/1280/1280, cross-attention 768, VAE 128/256/512/512, CLIP text encoder 12x768) and a
ViT-L/14-shaped open_clip CLIP. For each batch size:

(1) generation: images/s of our generation stage (``generate_images``: seeds, adapter, blocks) against
    a raw diffusers loop calling the same pipeline with the same seeds and batch size (target >= 0.95);
(2) scoring: images/s of the CLIP annotator against a raw batched ``encode_image`` forward (target >= 0.9);
(3) end to end (generate + score, overlapped) against generation alone (target <= 1.10 on a GPU), and the
    sequential pipeline for comparison.

Variants alternate within each round so drift in load hits all alike; medians are reported. The last
line is ``RESULT gen_ratio_min=<x> score_ratio_min=<x> e2e_over_gen_max=<x>``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.clip import ClipAnnotator, ClipThresholds
from pytest_t2ibias.annotate.clip_backends import open_clip_backend
from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator
from pytest_t2ibias.generate.stage import generate_images, plan_requests
from pytest_t2ibias.generate.tiny import TINY_CONFIG
from pytest_t2ibias.pipeline import evaluate_suite
from pytest_t2ibias.suites import load_suite

SD15: dict[str, Any] = {
    "text_encoder": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "max_position_embeddings": 77,
        "projection_dim": 768,
    },
    "unet": {
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    },
    "vae": {
        "block_out_channels": (128, 256, 512, 512),
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
        "layers_per_block": 2,
        "sample_size": 512,
    },
    "size": 512,
    "clip": {"embed_dim": 768, "vision": {"layers": 24, "width": 1024, "head_width": 64, "patch_size": 14,
             "image_size": 224}, "text": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12,
             "layers": 12}},
}  # fmt: skip

# the reduced size is the package's tiny pipeline (the same text encoder, UNet and VAE)
REDUCED: dict[str, Any] = {
    **{part: TINY_CONFIG[part] for part in ("text_encoder", "unet", "vae")},
    "size": 64,
    "clip": {"embed_dim": 32, "vision": {"layers": 2, "width": 32, "head_width": 16, "patch_size": 8,
             "image_size": 64}, "text": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
             "layers": 2}},
}  # fmt: skip


def build_pipeline(shape: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    """A Stable-Diffusion pipeline of the given shapes with random weights (seed 0)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_t2ibias.generate.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **shape["text_encoder"],
            )
        )
        unet = UNet2DConditionModel(**shape["unet"])
        vae = AutoencoderKL(**shape["vae"])
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe = pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_clip(shape: dict[str, Any], device: str, dtype: torch.dtype) -> tuple[Any, Any, Any]:
    """An open_clip CLIP of the given shapes with random weights, its eval transform and tokenizer."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    cfg = shape["clip"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(
            embed_dim=cfg["embed_dim"], vision_cfg=CLIPVisionCfg(**cfg["vision"]), text_cfg=CLIPTextCfg(**cfg["text"])
        )
    preprocess = open_clip.image_transform(cfg["vision"]["image_size"], is_train=False)
    return model.to(device=device, dtype=dtype).eval(), preprocess, open_clip.tokenizer.SimpleTokenizer()


def timed(fn: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def rounds(variants: dict[str, Callable[[], object]], count: int, device: str) -> dict[str, float]:
    """Median seconds of each variant over ``count`` rounds, the order rotating each round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(count):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(variants[name], device))
    return {name: statistics.median(values) for name, values in times.items()}


def measure_batch(
    batch: int,
    images_n: int,
    pipe: Any,
    clip: tuple[Any, Any, Any],
    size: int,
    steps: int,
    count: int,
    device: str,
    warm: bool = True,
) -> tuple[float, float, float]:
    """One batch size: (stage / raw pipeline, annotator / raw forward, end-to-end / generation alone)."""
    model, preprocess, tokenizer = clip
    dtype = pipe.unet.dtype
    suite = load_suite("t2i-biasbench")
    requests = plan_requests(suite, images_n, ["doctor"])
    prompts, seeds = [r.prompt for r in requests], [r.seed for r in requests]
    generator = DiffusersGenerator(
        pipe, "bench", num_inference_steps=steps, guidance_scale=7.5, height=size, width=size, batch_size=batch
    )

    def raw_loop() -> None:
        # what a user writes without the plugin: same pipeline, seeds, settings and batch size
        for start in range(0, len(prompts), batch):
            gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start : start + batch]]
            with torch.inference_mode():
                pipe(
                    prompts[start : start + batch],
                    generator=gens,
                    num_inference_steps=steps,
                    guidance_scale=7.5,
                    height=size,
                    width=size,
                    output_type="pil",
                )

    images = [g.image for g in generate_images(requests, generator).images]
    backend = open_clip_backend(model, preprocess, tokenizer, "bench-clip", device, dtype, batch)
    annotator = ClipAnnotator(suite, backend, ClipThresholds(person_threshold=float("-inf")))
    items = [AnnotationInput(f"i{i}", image, prompts[i], seeds[i]) for i, image in enumerate(images)]

    def raw_forward() -> None:
        for start in range(0, len(images), batch):
            pixels = torch.stack([preprocess(image) for image in images[start : start + batch]])
            with torch.inference_mode():
                features = model.encode_image(pixels.to(device, dtype))
                (features / features.norm(dim=-1, keepdim=True)).float().cpu().numpy()

    def end_to_end(overlap: bool) -> None:
        evaluate_suite(suite, generator, annotator, images_per_prompt=images_n, categories=["doctor"], overlap=overlap)

    variants: dict[str, Callable[[], object]] = {
        "raw pipeline": raw_loop,
        "stage": lambda: generate_images(requests, generator),
        "raw forward": raw_forward,
        "annotator": lambda: annotator.annotate(items, "doctor"),
        "e2e overlapped": lambda: end_to_end(True),
        "e2e sequential": lambda: end_to_end(False),
    }
    for variant in variants.values() if warm else ():  # kernels chosen, text embeddings cached, imports done
        variant()
    medians = rounds(variants, count, device)
    rate = {name: images_n / seconds for name, seconds in medians.items()}
    gen_ratio = rate["stage"] / rate["raw pipeline"]
    score_ratio = rate["annotator"] / rate["raw forward"]
    e2e = medians["e2e overlapped"] / medians["stage"]
    print(
        f"batch {batch:>2} ({images_n} images): generation stage {rate['stage']:8.2f} img/s vs raw "
        f"{rate['raw pipeline']:8.2f} ({gen_ratio:.3f}); annotator {rate['annotator']:8.1f} img/s vs raw "
        f"{rate['raw forward']:8.1f} ({score_ratio:.3f}); end-to-end / generation: overlapped {e2e:.3f}, "
        f"sequential {medians['e2e sequential'] / medians['stage']:.3f}"
    )
    return gen_ratio, score_ratio, e2e


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reduced", action="store_true", help="tiny shapes (the default without CUDA)")
    parser.add_argument("--quick", action="store_true", help="batch size 2, one round, 2 steps, no warm-up (CI)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 1 2 4 8 16")
    parser.add_argument("--images", type=int, default=None, help="images per batch size (default 2 x batch, >= 4)")
    parser.add_argument("--steps", type=int, default=None, help="inference steps (default 20; quick: 2)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per variant (default 3; quick: 1)")
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    dtype = torch.float16 if cuda else torch.float32
    reduced = args.reduced or not cuda
    shape = REDUCED if reduced else SD15
    sizes = args.batch_sizes or ([2] if args.quick else [1, 2, 4, 8, 16])
    steps = args.steps or (2 if args.quick else 20)
    count = args.rounds or (1 if args.quick else 3)

    pipe = build_pipeline(shape, device, dtype)
    model, preprocess, tokenizer = build_clip(shape, device, dtype)
    size = shape["size"]
    print(
        f"{'reduced' if reduced else 'SD-1.5'} shapes at {size}x{size}, "
        f"{'ViT-L/14' if not reduced else 'tiny'} CLIP, {str(dtype).removeprefix('torch.')} on {device}, "
        f"{steps} steps, {count} round(s), torch threads {torch.get_num_threads()}"
    )
    worst_gen, worst_score, worst_e2e = float("inf"), float("inf"), 0.0
    for batch in sizes:
        images_n = args.images or max(2 * batch, 4)
        clip = (model, preprocess, tokenizer)
        gen, score, e2e = measure_batch(batch, images_n, pipe, clip, size, steps, count, device, not args.quick)
        worst_gen, worst_score, worst_e2e = min(worst_gen, gen), min(worst_score, score), max(worst_e2e, e2e)
    print("targets: generation >= 0.95, annotator >= 0.9, end-to-end / generation <= 1.10 (on a GPU)")
    print(f"RESULT gen_ratio_min={worst_gen:.3f} score_ratio_min={worst_score:.3f} e2e_over_gen_max={worst_e2e:.3f}")
    return {"gen_ratio_min": worst_gen, "score_ratio_min": worst_score, "e2e_over_gen_max": worst_e2e}


if __name__ == "__main__":
    main()
