"""The built-in ``tiny`` model: a Stable-Diffusion-shaped pipeline with random weights, built in memory.

No download: the tokenizer is CLIP's real BPE vocabulary, read from the file the open_clip wheel ships;
the text encoder, UNet and VAE are a few hundred thousand random parameters drawn under a fixed seed.
It makes 64x64 images of noise-like texture in well under a second per batch on a CPU. It exists so
every stage runs in CI and in examples; it is never used unless asked for by name.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

#: Everything that shapes the tiny pipeline; its hash is the tiny model's fingerprint.
TINY_CONFIG: dict[str, Any] = {
    "seed": 0,
    "text_encoder": {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "max_position_embeddings": 77,
        "projection_dim": 32,
    },
    "unet": {
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "sample_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "cross_attention_dim": 32,
        "norm_num_groups": 8,
        "attention_head_dim": 4,
    },
    "vae": {
        "block_out_channels": [32, 64],
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
        "latent_channels": 4,
        "norm_num_groups": 8,
        "sample_size": 64,
    },
    "scheduler": {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
    },
}

TINY_STEPS = 4
TINY_GUIDANCE = 7.5
TINY_SIZE = 64


def tiny_fingerprint() -> str:
    """The tiny model's identity: a hash of its config (weights follow from config and seed)."""
    blob = json.dumps(TINY_CONFIG, sort_keys=True).encode()
    return "tiny:" + hashlib.sha256(blob).hexdigest()[:16]


def _bytes_to_unicode() -> dict[int, str]:
    # CLIP's reversible byte -> printable-character table (as in open_clip's SimpleTokenizer).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


@functools.lru_cache(maxsize=1)
def clip_bpe() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """CLIP's vocabulary and merges, from the BPE file inside the open_clip wheel (no download)."""
    try:
        import open_clip
    except ModuleNotFoundError as err:  # pragma: no cover - open_clip is a dependency
        raise ModuleNotFoundError("the tiny model needs open_clip: pip install open_clip_torch") from err
    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges: list[tuple[str, str]] = []
    for line in lines[1 : 49152 - 256 - 2 + 1]:
        left, right = line.split()
        merges.append((left, right))
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, tuple(merges)


def tiny_tokenizer() -> CLIPTokenizer:
    """A transformers ``CLIPTokenizer`` with CLIP's real vocabulary, built offline."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_bpe()
    # transformers annotates `merges` as strings, but the tokenizers backend wants (left, right) pairs
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=77)  # type: ignore[arg-type]


def build_tiny_pipeline() -> StableDiffusionPipeline:
    """The tiny pipeline, identical on every call (weights drawn under ``TINY_CONFIG['seed']``)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    cfg = TINY_CONFIG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **cfg["text_encoder"],
            )
        )
        unet = UNet2DConditionModel(**_tuples(cfg["unet"]))
        vae = AutoencoderKL(**_tuples(cfg["vae"]))
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(**cfg["scheduler"]),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    for module in (text_encoder, unet, vae):
        module.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tuples(config: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
