"""Instant mode kept warm between requests: the face adapter's weights read once, its image encoder left on the GPU.

Loading the face adapter was most of an Instant request before its image (SDXL: 1.4 s of 4.0 s warm on an H200,
README): diffusers read the adapter's file (848 MB for SDXL) again each time, and the image encoder (ViT-H, 1.3 GB
in bf16) came back from the CPU. Here the adapter's own weights are kept in memory (CPU, one adapter per pipeline:
bounded) and handed to `load_ip_adapter` as a state dict, and the encoder stays on the GPU while the free memory
would still hold a Studio training run beside it (`keep_on_device`); otherwise, under memory pressure, it goes back
to the CPU. Neither holds anything of anyone: random or published weights, never a photo or an embedding. The
pipeline itself is as plain between requests as before (pipeline/instant.py unloads the adapter every time).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from pipeline.face_adapter_layout import FaceAdapterFiles
    from pipeline.models import BaseModel

# pipeline -> (adapter id, its weights as load_ip_adapter takes them: {"image_proj": {...}, "ip_adapter": {...}})
_weights: "weakref.WeakKeyDictionary[object, tuple[str, dict]]" = weakref.WeakKeyDictionary()


def warm_weights(pipe, adapter_id: str) -> dict | None:
    """The adapter's weights kept from an earlier request on this pipeline, or None."""
    kept = _weights.get(pipe)
    return kept[1] if kept is not None and kept[0] == adapter_id else None


def keep_weights(pipe, adapter_id: str, source: str, files: "FaceAdapterFiles", local_only: bool) -> None:
    """Read the adapter's weight file once (as load_ip_adapter splits it) and keep it, in place of any other."""
    if warm_weights(pipe, adapter_id) is not None or not files.weight_name.endswith(".safetensors"):
        return
    from safetensors import safe_open
    local = Path(source)
    if local.is_dir():
        path = local / files.subfolder / files.weight_name
    else:
        from huggingface_hub import hf_hub_download
        path = Path(hf_hub_download(source, files.weight_name, subfolder=files.subfolder,
                                    local_files_only=local_only))
    state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for key in f.keys():
            part, _, rest = key.partition(".")
            if part in state:
                state[part][rest] = f.get_tensor(key)
    _weights[pipe] = (adapter_id, state)


def keep_on_device(base: "BaseModel", encoder: torch.nn.Module) -> bool:
    """Whether the image encoder may stay on the GPU: only while a Studio run would still fit without
    checkpointing in the memory left free (pipeline/train_lora.py's estimate), so Instant's comfort never
    slows training down."""
    if base.device.type != "cuda":
        return False  # on a CPU it is already where it runs
    from pipeline.train_lora import needs_checkpointing
    free, _ = torch.cuda.mem_get_info(base.device)
    tight, _ = needs_checkpointing(base.family, 2, free)
    return not tight


def forget(pipe) -> None:
    """Drop the kept weights of `pipe` (tests; a model being unloaded)."""
    _weights.pop(pipe, None)
