"""Generate styled headshots with one session's adapter, loaded from memory and removed afterwards.

Isolation (promise 1): the base pipeline is shared by every session, so an adapter is
loaded into it under the base's lock, used, and unloaded in a `finally` — another
session never sees it, even after an error or a cancellation. LoRA is never fused into
the shared weights (`fuse_lora`), because unfusing does not restore them bit for bit.
Seeds are reproducible: image i of a call uses `seed + i`.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from PIL import Image

from pipeline.adapter import Adapter
from pipeline.faces import CLASS_WORD, TRIGGER
from pipeline.models import BaseModel
from pipeline.styles import Style
from privacy.errors import Cancelled

DEFAULT_STEPS = {"sd15": 30, "sdxl": 30}  # denoising steps for real models (Euler/DDIM-class schedulers)
DEMO_STEPS = 4  # tiny random models: more steps cannot make noise look better
GUIDANCE_SCALE = 6.0  # classifier-free guidance; 5-7 keeps skin natural in portraits
MAX_BATCH = 4  # images per pipeline call: bounds activation memory at 1024 px


@dataclass
class GeneratedImage:
    image: Image.Image
    style_id: str
    seed: int
    is_demo: bool  # from a tiny random-weight model: the UI must label it "demo"


@contextmanager
def adapter_loaded(base: BaseModel, adapter: Adapter) -> Iterator[str]:
    """Load `adapter` into the shared pipeline for the duration of the block; yields its unique name."""
    if adapter.family != base.family:
        raise ValueError(f"adapter was trained on a {adapter.family} model, the base is {base.family}")
    if adapter.base_model_id != base.model_id:
        raise ValueError("adapter was trained on a different base model")
    with base.lock:
        name = f"session_{uuid.uuid4().hex[:12]}"
        metadata = {f"unet.{k}": v for k, v in adapter.lora_config_dict().items()}
        try:
            # A copy: diffusers may pop keys from the dict it is handed; the metadata carries
            # rank and alpha so the layers are rebuilt exactly as trained.
            base.pipe.unet.load_lora_adapter(dict(adapter.state_dict), prefix="unet", adapter_name=name,
                                             metadata=metadata)
            yield name
        finally:
            base.pipe.unload_lora_weights()  # removes every LoRA layer: the base is as loaded


def generate(base: BaseModel, adapter: Adapter, style: Style, *, count: int, seed: int, steps: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             cancel: threading.Event | None = None) -> list[GeneratedImage]:
    """`count` headshots in `style`; `progress(done, total)` counts denoising steps over all images."""
    if count < 1:
        raise ValueError("count must be at least 1")
    steps = steps or (DEMO_STEPS if base.is_demo else DEFAULT_STEPS[base.family])
    width, height = style.size_for(base.family, base.is_demo)
    prompt = style.prompt(f"{TRIGGER} {CLASS_WORD}")
    negative = style.negative_prompt()
    total, done = count * steps, 0
    results: list[GeneratedImage] = []

    def on_step(pipe, step_index, timestep, callback_kwargs):
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise Cancelled()  # unwinds through adapter_loaded's finally: the adapter is removed
        done += n_in_batch
        if progress is not None:
            progress(done, total)
        return callback_kwargs

    with adapter_loaded(base, adapter):
        for start in range(0, count, MAX_BATCH):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            seeds = list(range(seed + start, seed + min(count, start + MAX_BATCH)))
            n_in_batch = len(seeds)
            # One generator per image: image i's noise depends only on seed + i, not on the batching.
            generators = [torch.Generator(device=base.device).manual_seed(s) for s in seeds]
            with torch.inference_mode():
                images = base.pipe(prompt=[prompt] * n_in_batch, negative_prompt=[negative] * n_in_batch,
                                   width=width, height=height, num_inference_steps=steps,
                                   guidance_scale=GUIDANCE_SCALE, generator=generators,
                                   callback_on_step_end=on_step).images
            results += [GeneratedImage(image=im, style_id=style.id, seed=s, is_demo=base.is_demo)
                        for im, s in zip(images, seeds)]
    return results
