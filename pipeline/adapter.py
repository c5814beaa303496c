"""The trained per-person LoRA adapter: weights plus metadata, to and from bytes, never via a file.

An `Adapter` holds the LoRA state dict (CPU tensors, keys in diffusers' PEFT layout
prefixed by component, e.g. "unet.down_blocks.1...to_q.lora_A.weight") and the
metadata needed to use it again: family, base model id, LoRA rank/alpha/targets and
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

FORMAT_VERSION = "1"
_META_KEY = "headshot_adapter"  # our metadata, JSON, in the safetensors header
DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY


@dataclass
class Adapter:
    state_dict: dict[str, torch.Tensor]  # "unet.<module>.lora_A.weight" -> CPU tensor
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
    if info.get("format") != FORMAT_VERSION:
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
    components = sorted({k.split(".", 1)[0] for k in adapter.state_dict})
    lora_meta = {f"{c}.{k}": v for c in components for k, v in adapter.lora_config_dict().items()}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in adapter.state_dict.items()}
    return st_save(tensors, metadata={"format": "pt",
                                      DIFFUSERS_METADATA_KEY: json.dumps(lora_meta, indent=2, sort_keys=True)})


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
