"""Tiny random-weight Stable Diffusion pipelines (SD1.5- and SDXL-shaped) for tests and the offline demo.

The configs follow the tiny components diffusers uses in its own pipeline tests
(tests/pipelines/stable_diffusion*/test_*.py: 32/64-channel UNet, 2-block VAE, a
5-layer 32-wide CLIP text encoder), so every code path of the real families runs in
seconds on a CPU. Weights are random but seeded: the same seed gives the same model.
Outputs are noise-like images and must be labelled "demo" (`BaseModel.is_demo`).

`save_tiny_face_adapter` writes a random-weight IP-Adapter "plus-face" for both families, with a
tiny CLIP vision encoder, in h94/IP-Adapter's files and key names, so that Instant mode
(pipeline/instant.py) loads it through diffusers' real `load_ip_adapter` path.

The tokenizer is a real byte-level BPE CLIP tokenizer built from a vocabulary and
merge list generated here. transformers v5 silently builds a 3-token dummy
tokenizer when `vocab`/`merges` are missing, which would map every prompt to
"unknown" and make conditioning meaningless; tests assert `len(tokenizer) > 256`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

TINY_IDS = {"tiny-sd": "sd15", "tiny-sdxl": "sdxl"}
TINY_RESOLUTION = 64  # pixels; the VAE downsamples by 2, so latents are 32x32
TOKENIZER_MAX_LENGTH = 77  # CLIP's context length; the pipelines pad/truncate to it
TEXT_VOCAB_SIZE = 2048  # embedding rows of the tiny text encoders; must exceed len(tokenizer)

# The trigger token comes first so its merges have the best ranks: BPE then always
# rebuilds it as ONE token, whatever other words' merges exist (tests assert this), as
# in CLIP's real vocabulary ("ohwx</w>" = 47993). The pipelines still use it as an
# added token past the vocabulary (pipeline/embeddings.py `add_trigger_token`).
TRIGGER_WORD = "ohwx"
# Words of the captions and of assets/styles.json, so that prompts tokenize into whole
# words as with the real CLIP vocabulary (a test keeps this list in sync with the styles;
# any other word still tokenizes, piece by piece).
_WORDS = (TRIGGER_WORD, "person") + tuple("""
a anatomy and at backdrop background bad black blazer blood blurred blurry bokeh bold bookshelf bright
business camera cartoon casual charcoal city clean clinic clothes coat collared colorful confident crew
cropped dark deformed disfigured distorted dramatic drawing duplicate editorial even extra fill fingers
focus formal frame gentle golden grey hallway harsh hat headshot high hour indoor jacket key kind lab
library light lighting logo looking low mid modern mutated natural navy neck neutral night nsfw nude of
office out outdoor over overexposed oversaturated painted painting party photo plain professional
quality relaxed resolution rim scrubs serious shadows sharp shirt shoulders smile smiling soft softly
street studio subtle suit sunglasses surgery sweater teal text thoughtful tie turtleneck tweed up wall
warm watermark white window with portrait man woman the in on an
beige blue burgundy cobalt coral muted mustard pale slate taupe yellow
open collar smart knitwear""".split())  # the last line: the team look's outfits (privacy/teams/team_look.py)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte maps to a printable character."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def _bpe(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE: repeatedly merge the adjacent pair with the best (lowest) rank."""
    while len(pieces) > 1:
        pairs = [(ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(pieces, pieces[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2:]
    return pieces


def tiny_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-style BPE vocabulary: the 256-symbol base alphabet (plain and end-of-word), whole words, specials."""
    alphabet = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for symbol in alphabet + [c + "</w>" for c in alphabet]:
        vocab.setdefault(symbol, len(vocab))
    ranks: dict[tuple[str, str], int] = {}
    for word in dict.fromkeys(_WORDS):
        # Tokenize the word with the merges so far, then chain-merge what is left, left to
        # right. The new merges rank after all earlier ones, so earlier words keep their
        # single token and this word becomes one too.
        pieces = _bpe(list(word[:-1]) + [word[-1] + "</w>"], ranks)
        left = pieces[0]
        for right in pieces[1:]:
            ranks.setdefault((left, right), len(ranks))
            left = left + right
            vocab.setdefault(left, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    return vocab, sorted(ranks, key=ranks.__getitem__)


def tiny_tokenizer() -> CLIPTokenizer:
    vocab, merges = tiny_vocab_and_merges()
    if len(vocab) > TEXT_VOCAB_SIZE:  # ids past the embedding table would crash the text encoder
        raise RuntimeError("grow TEXT_VOCAB_SIZE with the word list")
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=TOKENIZER_MAX_LENGTH)


def _text_config(**extra) -> CLIPTextConfig:
    tok_vocab, _ = tiny_vocab_and_merges()
    return CLIPTextConfig(
        bos_token_id=tok_vocab["<|startoftext|>"], eos_token_id=tok_vocab["<|endoftext|>"],
        pad_token_id=tok_vocab["<|endoftext|>"], hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=5, vocab_size=TEXT_VOCAB_SIZE,
        hidden_act="gelu", projection_dim=32, max_position_embeddings=TOKENIZER_MAX_LENGTH, **extra,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4, sample_size=TINY_RESOLUTION,
    )


def _scheduler() -> EulerDiscreteScheduler:
    # The noise schedule of SD1.5 / SDXL (scaled_linear, 1000 steps), epsilon prediction.
    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")


def _unet(family: str) -> UNet2DConditionModel:
    latent = TINY_RESOLUTION // 2
    if family == "sd15":
        return UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=2, sample_size=latent,
            in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        )
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=latent,
        in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids x 8 + pooled text (32)
        cross_attention_dim=64,  # both text encoders' hidden states, concatenated
    )


def build_tiny_pipeline(family: str, seed: int = 0) -> StableDiffusionPipeline | StableDiffusionXLPipeline:
    """A random-weight pipeline of `family` ("sd15" | "sdxl"), identical for the same seed."""
    if family not in ("sd15", "sdxl"):
        raise ValueError(f"unknown family {family!r}")
    # fork_rng: seeding must not disturb the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "sd15":
            unet = _unet("sd15")
            vae = _vae()
            text_encoder = CLIPTextModel(_text_config())
            pipe = StableDiffusionPipeline(
                vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(), unet=unet,
                scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
                image_encoder=None, requires_safety_checker=False,
            )
        else:
            unet = _unet("sdxl")
            vae = _vae()
            text_encoder = CLIPTextModel(_text_config())
            text_encoder_2 = CLIPTextModelWithProjection(_text_config())
            pipe = StableDiffusionXLPipeline(
                vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=_scheduler(),
            )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- a tiny IP-Adapter "plus-face" in h94/IP-Adapter's layout, for tests and the offline demo ---------------
# The files and folders of the real repository (pipeline/instant.py FACE_ADAPTER_FILES reads the same names),
# so that `pipe.load_ip_adapter` takes exactly the path it takes for the real weights.
TINY_FACE_ADAPTER = "tiny-ip-adapter"  # the face-adapter id that builds these weights (HEADSHOT_FACE_ADAPTER)
TINY_FACE_ADAPTER_FILES = {
    "sd15": ("models", "ip-adapter-plus-face_sd15.safetensors"),
    "sdxl": ("sdxl_models", "ip-adapter-plus-face_sdxl_vit-h.safetensors"),
}
TINY_IMAGE_ENCODER_FOLDER = "models/image_encoder"  # both families use the ViT-H encoder's folder


@dataclass(frozen=True)
class FaceAdapterSize:
    """The sizes `save_tiny_face_adapter` builds: the tiny default below, or real ones (bench/bench_gpu.py)."""

    image_encoder: dict  # CLIPVisionConfig fields of the image encoder
    resampler_hidden: dict  # family -> width of the "plus" resampler (heads of 64 channels)
    resampler_queries: int  # query tokens of the resampler
    unets: dict | None = None  # family -> UNet2DConditionModel config (built on the meta device); None = tiny
    dtype: torch.dtype = torch.float32  # of the adapter files (the encoder is saved in float32)


# The "plus" resampler of the real weights, shrunk: 4 blocks (diffusers' converter knows exactly 4), heads of
# 64 channels (it infers heads = to_q rows / 64), 4 query tokens instead of 16.
TINY_FACE_ADAPTER_SIZE = FaceAdapterSize(
    image_encoder=dict(hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2,
                       num_attention_heads=4, image_size=32, patch_size=8, num_channels=3),
    resampler_hidden={"sd15": 64, "sdxl": 64}, resampler_queries=4)


def _image_encoder(size: FaceAdapterSize):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**size.image_encoder))


def _original_resampler_state(embed_dims: int, output_dims: int, hidden: int, queries: int) -> dict[str, torch.Tensor]:
    """A random IP-Adapter Plus resampler in the ORIGINAL (tencent-ailab) key layout that h94's files use.

    Built as diffusers' `IPAdapterPlusImageProjection` and renamed back, the inverse of
    `UNet2DConditionLoadersMixin._convert_ip_adapter_image_proj_to_diffusers`; that converter loads it with
    `strict=True`, so a wrong name fails the load.
    """
    from diffusers.models.embeddings import IPAdapterPlusImageProjection
    projection = IPAdapterPlusImageProjection(embed_dims=embed_dims, output_dims=output_dims,
                                              hidden_dims=hidden, depth=4, dim_head=64,
                                              heads=hidden // 64, num_queries=queries)
    diffusers_state = projection.state_dict()
    state: dict[str, torch.Tensor] = {}
    renames = {"ln0": "0.norm1", "ln1": "0.norm2", "attn.to_q": "0.to_q", "attn.to_out.0": "0.to_out",
               "ff.0": "1.0", "ff.1.net.0.proj": "1.1", "ff.1.net.2": "1.3"}
    for key, value in diffusers_state.items():
        if not key.startswith("layers."):
            state[key] = value
            continue
        _, index, rest = key.split(".", 2)
        if rest.startswith(("attn.to_k", "attn.to_v")):
            continue  # merged into to_kv below
        name, _, leaf = rest.rpartition(".")
        state[f"layers.{index}.{renames[name]}.{leaf}"] = value
    for index in range(4):
        state[f"layers.{index}.0.to_kv.weight"] = torch.cat([diffusers_state[f"layers.{index}.attn.to_k.weight"],
                                                            diffusers_state[f"layers.{index}.attn.to_v.weight"]])
    return state


def _ip_attention_state(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """Random to_k_ip / to_v_ip of every cross-attention layer, numbered as the original format numbers them
    (all attention layers in order, so cross-attention ones are 1, 3, 5, ...)."""
    state = {}
    cross = unet.config.cross_attention_dim
    channels = unet.config.block_out_channels
    for number, name in enumerate(unet.attn_processors):
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        for proj in ("to_k_ip", "to_v_ip"):
            state[f"{number}.{proj}.weight"] = torch.randn(hidden, cross) * 0.02
    return state


def save_tiny_face_adapter(directory, seed: int = 0, size: FaceAdapterSize = TINY_FACE_ADAPTER_SIZE) -> None:
    """Write random-weight plus-face IP-Adapters (both families) and their image encoder to `directory`.

    Same seed, same weights. The layout is h94/IP-Adapter's: `models/image_encoder/`,
    `models/ip-adapter-plus-face_sd15.safetensors`, `sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors`.
    `size` is tiny by default; the GPU benchmark passes real sizes (ViT-H encoder, h94's resamplers, the
    real UNets' attention layout) to load real-size random weights through the same path.
    """
    from pathlib import Path

    from safetensors.torch import save_file
    root = Path(directory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = _image_encoder(size)
        encoder.save_pretrained(root / TINY_IMAGE_ENCODER_FOLDER)
        hidden = encoder.config.hidden_size
        del encoder
        for family, (subfolder, weight_name) in TINY_FACE_ADAPTER_FILES.items():
            if size.unets is None:
                unet = _unet(family)
            else:
                with torch.device("meta"):  # only its attention layout is read
                    unet = UNet2DConditionModel(**size.unets[family])
            tensors = {f"image_proj.{k}": v for k, v in _original_resampler_state(
                hidden, unet.config.cross_attention_dim, size.resampler_hidden[family],
                size.resampler_queries).items()}
            tensors.update({f"ip_adapter.{k}": v for k, v in _ip_attention_state(unet).items()})
            (root / subfolder).mkdir(parents=True, exist_ok=True)
            save_file({k: v.to(size.dtype).contiguous() for k, v in tensors.items()},
                      str(root / subfolder / weight_name))
