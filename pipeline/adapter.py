"""The trained per-person LoRA adapter: weights plus metadata, to and from bytes, never via a file.

An `Adapter` holds the LoRA state dict (CPU tensors, keys in diffusers' PEFT layout
prefixed by component, e.g. "unet.down_blocks.1...to_q.lora_A.weight"), the trigger
token's trained input embeddings per text encoder ("token_embeddings.text_encoder",
"token_embeddings.text_encoder_2": (n_tokens, hidden), pivotal tuning) — so they are
sealed, erased and exported with the LoRA, as one blob — and the metadata needed to
use it again: family, base model id, LoRA rank/alpha/targets and
the effective `TrainConfig` (saved beside the weights, as nanoGPT keeps its config
inside each checkpoint). Serialisation is in memory (`safetensors.torch.save`/`load`):
the studio seals the bytes in the encrypted vault, so a plaintext adapter, which
encodes a person's face, never reaches the disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

FORMAT_VERSION = "2"  # 2: token embeddings beside the LoRA weights
READABLE_FORMATS = ("1", "2")  # 1: LoRA only (adapters sealed before pivotal tuning)
EMBEDDINGS_PREFIX = "token_embeddings."
# The export's file names: diffusers' default LoRA name, and kohya / A1111 files (the
# layout diffusers' advanced DreamBooth script writes for those UIs).
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
KOHYA_LORA_FILE = "headshot_lora_kohya.safetensors"
EMBEDDINGS_FILE = "headshot_emb.safetensors"
USAGE_FILE = "HOW_TO_USE_THE_MODEL.txt"
_META_KEY = "headshot_adapter"  # our metadata, JSON, in the safetensors header
DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY


@dataclass
class Adapter:
    state_dict: dict[str, torch.Tensor]  # "unet.<module>.lora_A.weight" / "token_embeddings.<encoder>" -> CPU tensor
    family: str  # "sd15" | "sdxl": the base family it was trained on
    base_model_id: str
    rank: int
    alpha: int
    target_modules: tuple[str, ...]
    train_config: dict[str, Any] = field(default_factory=dict)  # effective TrainConfig, as a dict

    def metadata(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "family": self.family, "base_model_id": self.base_model_id,
                "rank": self.rank, "alpha": self.alpha, "target_modules": list(self.target_modules),
                "train_config": self.train_config}

    def component_state_dict(self, component: str) -> dict[str, torch.Tensor]:
        """The weights of one component ("unet", "text_encoder"), keys without the prefix."""
        prefix = component + "."
        return {k[len(prefix):]: v for k, v in self.state_dict.items() if k.startswith(prefix)}

    def unet_state_dict(self) -> dict[str, torch.Tensor]:
        """The UNet LoRA weights with their "unet." prefix (what `load_lora_adapter(prefix="unet")` takes)."""
        return {k: v for k, v in self.state_dict.items() if k.startswith("unet.")}

    def token_embeddings(self) -> dict[str, torch.Tensor]:
        """Trained trigger vectors per text encoder name; empty for LoRA-only (format 1) adapters."""
        return {k[len(EMBEDDINGS_PREFIX):]: v for k, v in self.state_dict.items() if k.startswith(EMBEDDINGS_PREFIX)}

    def lora_config_dict(self) -> dict[str, Any]:
        """The peft LoraConfig fields diffusers needs to rebuild the layers exactly (rank AND alpha)."""
        return {"r": self.rank, "lora_alpha": self.alpha, "target_modules": list(self.target_modules),
                "init_lora_weights": "gaussian", "use_dora": False, "lora_bias": False}


def adapter_to_bytes(adapter: Adapter) -> bytes:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in adapter.state_dict.items()}
    return st_save(tensors, metadata={"format": "pt", _META_KEY: json.dumps(adapter.metadata(), sort_keys=True)})


def adapter_from_bytes(data: bytes) -> Adapter:
    """Inverse of `adapter_to_bytes`; ValueError when the bytes are not one of our adapters."""
    meta = _header_metadata(data)
    if _META_KEY not in meta:
        raise ValueError("not a headshot adapter (metadata missing)")
    info = json.loads(meta[_META_KEY])
    if info.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unsupported adapter format {info.get('format')!r}")
    return Adapter(state_dict=st_load(data), family=info["family"], base_model_id=info["base_model_id"],
                   rank=int(info["rank"]), alpha=int(info["alpha"]),
                   target_modules=tuple(info["target_modules"]), train_config=info.get("train_config", {}))


def to_diffusers_lora_bytes(adapter: Adapter) -> bytes:
    """The adapter as a standard diffusers LoRA file (`pytorch_lora_weights.safetensors`), for data export.

    Same layout `StableDiffusion(XL)Pipeline.save_lora_weights` writes: component-prefixed
    PEFT keys and, per component, the LoraConfig under "lora_adapter_metadata", so
    `pipe.load_lora_weights(...)` rebuilds the same rank and alpha.
    """
    lora = adapter.unet_state_dict()
    components = sorted({k.split(".", 1)[0] for k in lora})
    lora_meta = {f"{c}.{k}": v for c in components for k, v in adapter.lora_config_dict().items()}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in lora.items()}
    return st_save(tensors, metadata={"format": "pt",
                                      DIFFUSERS_METADATA_KEY: json.dumps(lora_meta, indent=2, sort_keys=True)})


def to_kohya_lora_bytes(adapter: Adapter) -> bytes:
    """The LoRA in kohya's layout ("lora_unet_..._to_q.lora_down.weight" + ".alpha"), for AUTOMATIC1111 / ComfyUI.

    diffusers' own converter, as its advanced DreamBooth script uses for the same purpose.
    """
    from diffusers.utils import convert_state_dict_to_kohya
    kohya = convert_state_dict_to_kohya({k: v.detach().to("cpu").contiguous()
                                         for k, v in adapter.unet_state_dict().items()})
    # The converter writes alpha = rank; ours may differ, and kohya scales by alpha / rank.
    kohya = {k: (torch.tensor(float(adapter.alpha)) if k.endswith(".alpha") else v.contiguous())
             for k, v in kohya.items()}
    return st_save(kohya, metadata={"format": "pt"})


def to_embeddings_bytes(adapter: Adapter) -> bytes | None:
    """The trigger vectors in the kohya / A1111 embedding layout ("clip_l"/"clip_g" for SDXL, "emb_params" else)."""
    from pipeline.embeddings import KOHYA_KEYS
    vectors = adapter.token_embeddings()
    if not vectors:
        return None
    keys = KOHYA_KEYS[adapter.family]
    return st_save({keys[name]: v.detach().to("cpu", torch.float32).contiguous() for name, v in vectors.items()},
                   metadata={"format": "pt"})


def export_files(adapter: Adapter) -> dict[str, bytes]:
    """Every file a person gets for their model: diffusers LoRA, kohya LoRA, embeddings, how to use them."""
    from pipeline.embeddings import KOHYA_KEYS, export_tokens
    files = {DIFFUSERS_LORA_FILE: to_diffusers_lora_bytes(adapter), KOHYA_LORA_FILE: to_kohya_lora_bytes(adapter)}
    embeddings = to_embeddings_bytes(adapter)
    vectors = adapter.token_embeddings()
    if embeddings is not None:
        files[EMBEDDINGS_FILE] = embeddings
    n = next(iter(vectors.values())).shape[0] if vectors else 0
    tokens = export_tokens(n)
    subject = "".join(tokens) + " person" if n else "ohwx person"
    loads = "\n".join(
        f"pipe.load_textual_inversion(emb[{KOHYA_KEYS[adapter.family][name]!r}], token={tokens!r}, "
        f"text_encoder=pipe.{name}, tokenizer=pipe.{'tokenizer_2' if name == 'text_encoder_2' else 'tokenizer'})"
        for name in vectors)
    files[USAGE_FILE] = (
        f"Your personal headshot model, trained on {adapter.base_model_id} ({adapter.family}).\n"
        "It encodes your face: keep it private.\n\n"
        "diffusers (Python):\n"
        f"    pipe.load_lora_weights('.', weight_name='{DIFFUSERS_LORA_FILE}')\n"
        + (f"    from safetensors.torch import load_file; emb = load_file('{EMBEDDINGS_FILE}')\n"
           + "".join(f"    {line}\n" for line in loads.splitlines()) if n else "")
        + f"    image = pipe('professional headshot photo of {subject}, "
        "navy suit, grey studio background').images[0]\n\n"
        f"AUTOMATIC1111 / ComfyUI / SD.Next: put {KOHYA_LORA_FILE} in models/Lora"
        + (f" and {EMBEDDINGS_FILE} in embeddings, then prompt e.g. "
           f"'professional headshot photo of {EMBEDDINGS_FILE.removesuffix('.safetensors')} person <lora:"
           f"{KOHYA_LORA_FILE.removesuffix('.safetensors')}:1>'.\n" if n else ".\n")
    ).encode()
    return files


def _header_metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header whose
    # "__metadata__" holds the string metadata. `safetensors.torch.load` drops it.
    if len(data) < 8:
        raise ValueError("not a safetensors buffer")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("not a safetensors buffer")
    try:
        header = json.loads(data[8:8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a safetensors buffer") from exc
    return header.get("__metadata__", {}) or {}
