"""Generation with a session's LoRA folded into the base weights for one run, and the base put back bit for bit.

peft keeps a LoRA beside each projection (x W + (x A) B * scale): two more matmuls and a Python wrapper per
projection per denoising step. Folding W' = W + scale * B A into the weight once makes the loop run the plain
UNet. diffusers' own `fuse_lora` / `unfuse_lora` subtracts the delta again, which does not give the same bits
back in bf16 (the reason pipeline/generate.py never used it): here the weights a LoRA touches are COPIED before
folding and copied back afterwards, in a `finally`, under the base's lock, so the shared base is bit-identical
after the run whatever happens (promise 1: another session never sees this adapter). The copies cost the memory of
the touched weights (SDXL's attention projections) for the length of the run.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import torch

from pipeline.embeddings import trigger_embeddings_applied

if TYPE_CHECKING:
    from pipeline.adapter import Adapter
    from pipeline.models import BaseModel

_A, _B = ".lora_A.weight", ".lora_B.weight"


def lora_deltas(adapter: "Adapter") -> dict[str, torch.Tensor]:
    """UNet module path -> the adapter's weight delta scale * B @ A (fp32, CPU), for every LoRA'd linear layer."""
    weights = adapter.component_state_dict("unet")
    scale = adapter.alpha / adapter.rank
    deltas = {}
    for key, a in weights.items():
        if not key.endswith(_A):
            continue
        path = key[: -len(_A)]
        b = weights[path + _B]
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"only linear LoRA layers can be folded, not {path}")
        deltas[path] = scale * (b.float() @ a.float())
    return deltas


@contextmanager
def lora_fused(base: "BaseModel", adapter: "Adapter") -> Iterator[str]:
    """`adapter` (LoRA folded into the UNet's weights, trigger embeddings swapped in) for the block; yields a name.

    The same contract as `pipeline.generate.adapter_loaded`, which it stands in for when `base.speed.fuse_lora`.
    """
    if adapter.family != base.family:
        raise ValueError(f"adapter was trained on a {adapter.family} model, the base is {base.family}")
    if adapter.base_model_id != base.model_id:
        raise ValueError("adapter was trained on a different base model")
    deltas = lora_deltas(adapter)
    unet = base.pipe.unet
    with base.lock:
        originals: dict[str, torch.Tensor] = {}
        try:
            with torch.no_grad():
                for path, delta in deltas.items():
                    weight = unet.get_submodule(path).weight
                    originals[path] = weight.detach().clone()  # before the first change: restored in `finally`
                    weight.copy_((weight.float() + delta.to(weight.device)).to(weight.dtype))
            with trigger_embeddings_applied(base, adapter.token_embeddings()):
                yield "fused"
        finally:
            with torch.no_grad():
                for path, original in originals.items():
                    unet.get_submodule(path).weight.copy_(original)
            originals.clear()
