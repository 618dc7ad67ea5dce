"""A tiny random diffusers inpainting pipeline, built offline, for the diffusers adapter's tests and benchmark.

Built the way diffusers' own fast tests build ``StableDiffusionInpaintPipeline`` components (tests/pipelines/
stable_diffusion/test_stable_diffusion_inpaint.py upstream): a small UNet with 9 input channels (4 noisy
latents + 4 masked-image latents + 1 mask), a small VAE, a CLIP text encoder from a config and a CLIP
tokenizer from a vocabulary written here. Nothing is downloaded; weights are random but seeded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: a byte-level BPE vocabulary big enough for short ASCII prompts: every printable ASCII character
#: alone and as a word end (``</w>``), plus the two special tokens CLIP uses
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """``vocab.json`` + ``merges.txt`` for a CLIP tokenizer (no merges: every character is a token)."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(33, 127)]
    tokens = [*chars, *(c + "</w>" for c in chars), *_SPECIAL]
    vocab = {t: i for i, t in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder / "vocab.json", folder / "merges.txt"


def tiny_components(in_channels: int = 9, seed: int = 0, vocab_dir: Path | None = None) -> dict[str, Any]:
    """The pipeline's modules, each seeded; ``in_channels=4`` gives a text-to-image UNet (for error tests)."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8, sample_size=8,
        in_channels=in_channels, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16, attention_head_dim=4,
    )
    torch.manual_seed(seed + 1)
    # four levels: vae_scale_factor 8, as in Stable Diffusion
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64,
    )
    torch.manual_seed(seed + 2)
    n_chars = 127 - 33  # the special tokens follow the characters and their word ends
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=2 * n_chars, eos_token_id=2 * n_chars + 1, pad_token_id=2 * n_chars + 1,
        vocab_size=2 * n_chars + 2, hidden_size=16, intermediate_size=32, layer_norm_eps=1e-5,
        num_attention_heads=2, num_hidden_layers=2, max_position_embeddings=77, projection_dim=16,
    ))
    text_encoder.eval()
    with tempfile.TemporaryDirectory() as tmp:
        # from_pretrained on the folder: the constructor's file arguments were renamed in transformers 5
        folder = Path(vocab_dir or tmp)
        write_tokenizer_files(folder)
        tokenizer = CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": scheduler, "safety_checker": None, "feature_extractor": None}


def save_tiny_pipeline(folder: str | Path, in_channels: int = 9, seed: int = 0,
                       text_to_image: bool = False) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it to ``folder`` (returned).

    ``text_to_image=True`` saves a ``StableDiffusionPipeline`` (what a user might point at by mistake).
    """
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    folder = Path(folder)
    parts = tiny_components(in_channels=in_channels, seed=seed)
    cls = StableDiffusionPipeline if text_to_image else StableDiffusionInpaintPipeline
    pipe = cls(**parts, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder
