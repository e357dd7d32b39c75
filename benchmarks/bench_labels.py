"""Labels without images, and the cost of fingerprinting a model given as an object (issue 22).

1. 1,000 precomputed labels (10 occupations x 4 prompts x 25 images, suite ``occupations``) measured
   through ``t2ibias evaluate --scorer labels:PATH`` and through pytest (``--t2i-scorer=labels:PATH``),
   each in a fresh process (start-up included): no image may be generated, no model loaded.
2. ``fingerprint_share``: the time to fingerprint an SD-1.5-shaped pipeline object (random-weight UNet,
   CLIP text encoder and VAE of SD-1.5's shapes, ~1.07 B parameters, hashed from their bytes) over the
   time to generate one 512x512 image with it at 30 steps (guidance 7.5), both on the CPU in this run.

    python benchmarks/bench_labels.py           # everything; the 30-step image takes minutes on a CPU
    python benchmarks/bench_labels.py --quick   # the image's time from 1- and 2-step runs (per step x 30
                                                # + fixed cost)

Prints ``RESULT images_generated=0 evaluate_seconds_per_1000_labels<5 fingerprint_share<0.10`` (the
figures, then ``ok`` or ``FAILED``): ``evaluate_seconds_per_1000_labels`` is the slower of the two ways
(each a whole process: interpreter, pytest and plugin start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

CATEGORIES = 10
PROMPTS_PER_CATEGORY = 4


def write_labels(path: Path, per_prompt: int) -> tuple[list[str], int]:
    """A labels CSV for the first ``CATEGORIES`` occupations: one row per planned image."""
    from pytest_t2ibias.generate.stage import plan_requests
    from pytest_t2ibias.pipeline import image_id
    from pytest_t2ibias.suites import load_suite

    suite = load_suite("occupations")
    chosen = list(suite.categories)[:CATEGORIES]
    rows = [
        f"{image_id(r.category, r.prompt_index, r.image_index)},{'female' if r.seed % 3 else 'male'}\n"
        for r in plan_requests(suite, per_prompt, chosen)
    ]
    path.write_text("image_id,gender\n" + "".join(rows))
    return chosen, len(rows)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds of the last child process (wall time on a shared machine is mostly waiting)
CPU: dict[str, float] = {}


def bench_cli(work: Path, labels: Path, chosen: list[str], per_prompt: int) -> tuple[float, int]:
    """Seconds of one ``t2ibias evaluate`` process, and the images its ``done in`` line says it generated."""
    args = [sys.executable, "-m", "pytest_t2ibias.cli", "evaluate", "--suite", "occupations", "--model", "tiny",
            "--scorer", f"labels:{labels}", "--images-per-prompt", str(per_prompt), "--cache", str(work / "cache"),
            "--format", "json", "--no-progress"]  # fmt: skip
    for category in chosen:
        args += ["--category", category]
    start, cpu = time.perf_counter(), _child_cpu()
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=work)
    seconds = time.perf_counter() - start
    CPU["evaluate"] = _child_cpu() - cpu
    done = re.search(r"(\d+) images generated", out.stderr)
    if done is None:
        raise SystemExit(f"no 'done in' line in:\n{out.stderr}")
    return seconds, int(done.group(1))


def bench_pytest(work: Path, labels: Path, chosen: list[str], per_prompt: int) -> tuple[float, int]:
    """Seconds of one pytest run over ``chosen`` (one test per category), and the images in its cache."""
    project = work / "project"
    project.mkdir()
    (project / "pytest.ini").write_text(
        f"[pytest]\nt2ibias_model = tiny\nt2ibias_scorer = labels:{labels}\nt2ibias_suite = occupations\n"
        f"t2ibias_images_per_prompt = {per_prompt}\nt2ibias_cache = cache\n"
    )
    tests = "import sys\nimport pytest\n\n"
    for category in chosen:
        tests += textwrap.dedent(
            f"""
            @pytest.mark.t2ibias(category={category!r})
            def test_{category}(t2ibias_result):
                assert len(t2ibias_result.records) == {PROMPTS_PER_CATEGORY * per_prompt}
                assert "diffusers" not in sys.modules  # no model built
            """
        )
    (project / "test_labels.py").write_text(tests)
    start, cpu = time.perf_counter(), _child_cpu()
    # not ours: hypothesis's pytest plugin imports hypothesis at the end of every run (seconds)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"],
                         capture_output=True, text=True, cwd=project)  # fmt: skip
    seconds = time.perf_counter() - start
    CPU["pytest"] = _child_cpu() - cpu
    if out.returncode != 0:
        raise SystemExit(f"the pytest run failed:\n{out.stdout[-3000:]}")
    return seconds, len(list((project / "cache").rglob("*.png")))


def sd15_pipeline() -> Any:
    """A Stable Diffusion 1.5-shaped pipeline with random weights (the tiny model's real CLIP tokenizer)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_t2ibias.generate.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                           num_hidden_layers=12, max_position_embeddings=77, projection_dim=768,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        )  # fmt: skip
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD-1.5's
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )  # fmt: skip
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1)  # fmt: skip
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bench_fingerprint(quick: bool) -> dict[str, float]:
    import torch

    from pytest_t2ibias.generate import fingerprint
    from pytest_t2ibias.generate.objects import as_generator

    pipe = sd15_pipeline()
    params = sum(p.numel() for m in (pipe.unet, pipe.text_encoder, pipe.vae) for p in m.parameters())
    fingerprint._OBJECT_FINGERPRINTS.clear()
    start = time.perf_counter()
    as_generator(pipe)  # wraps and fingerprints, as the plugin does with a fixture's pipeline
    fp_seconds = time.perf_counter() - start

    def image(steps: int) -> float:
        generator = torch.Generator("cpu").manual_seed(0)
        start = time.perf_counter()
        with torch.inference_mode():
            pipe("a photo of a doctor", num_inference_steps=steps, guidance_scale=7.5, height=512, width=512,
                 generator=generator)  # fmt: skip
        return time.perf_counter() - start

    if quick:  # fixed cost (text encoder, VAE decode) + 30 x the cost of one step
        one, two = image(1), image(2)
        # a step costs no more than a whole 1-step image: the clamp keeps a load spike on a shared machine
        # from inflating the estimate (which would flatter fingerprint_share)
        step = min(max(two - one, 0.0), one)
        gen_seconds = (one - step) + 30 * step
    else:
        gen_seconds = image(30)
    return {"parameters": params, "fingerprint_seconds": fp_seconds, "generate_seconds": gen_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 30-step image's time from 1- and 2-step runs")
    parser.add_argument("--skip-fingerprint", action="store_true", help="labels only (no SD-1.5-shaped model)")
    args = parser.parse_args()
    per_prompt = 25  # 10 x 4 x 25 = 1,000 labels (cheap: --quick shortens the image only)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        labels = work / "labels.csv"
        chosen, count = write_labels(labels, per_prompt)
        cli_seconds, cli_images = bench_cli(work, labels, chosen, per_prompt)
        pytest_seconds, pytest_images = bench_pytest(work, labels, chosen, per_prompt)
    per_1000 = {"evaluate": cli_seconds * 1000 / count, "pytest": pytest_seconds * 1000 / count}
    print(f"labels: {count} of {len(chosen)} categories; t2ibias evaluate {cli_seconds:.2f} s "
          f"({cli_images} images generated), pytest {pytest_seconds:.2f} s "
          f"({pytest_images} images cached)")  # fmt: skip
    figures: dict[str, Any] = {
        "images_generated": cli_images + pytest_images,
        "evaluate_seconds_per_1000_labels": round(max(per_1000.values()), 2),
        "cli_seconds_per_1000_labels": round(per_1000["evaluate"], 2),
        "pytest_seconds_per_1000_labels": round(per_1000["pytest"], 2),
        "cli_cpu_seconds_per_1000_labels": round(CPU["evaluate"] * 1000 / count, 2),
        "pytest_cpu_seconds_per_1000_labels": round(CPU["pytest"] * 1000 / count, 2),
    }
    ok = figures["images_generated"] == 0 and figures["evaluate_seconds_per_1000_labels"] < 5
    if not args.skip_fingerprint:
        fp = bench_fingerprint(args.quick)
        print(f"SD-1.5-shaped pipeline: {fp['parameters'] / 1e9:.2f} B parameters; fingerprint "
              f"{fp['fingerprint_seconds']:.2f} s; one 512x512 image at 30 steps {fp['generate_seconds']:.1f} s"
              + (" (estimated from 1 and 2 steps)" if args.quick else ""))  # fmt: skip
        figures["fingerprint_seconds"] = round(fp["fingerprint_seconds"], 2)
        figures["generate_seconds"] = round(fp["generate_seconds"], 1)
        figures["fingerprint_share"] = round(fp["fingerprint_seconds"] / fp["generate_seconds"], 4)
        ok = ok and figures["fingerprint_share"] < 0.10
    print(json.dumps(figures))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in figures.items()) + (" ok" if ok else " FAILED"))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
