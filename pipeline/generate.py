"""Generate styled headshots with one session's adapter, loaded from memory once per run and removed afterwards.

Isolation (promise 1): the base pipeline is shared by every session, so an adapter is
loaded into it under the base's lock, used for every chosen style, and unloaded in a
`finally` — another session never sees it, even after an error or a cancellation. LoRA
is never fused into the shared weights (`fuse_lora`), because unfusing does not
restore them bit for bit. The adapter's trigger-token embeddings (pivotal tuning) are
swapped into the shared text encoders the same way (`pipeline/embeddings.py`).
Seeds are reproducible: image i of a style uses `seed + i`. A team's style (`Style.exact_backdrop`) has its
background painted the exact colour as the images come out of the pipeline (pipeline/backdrop.py), so scoring,
the safety screen, the watermark and C2PA all see the image the member receives.

Memory: the VAE decodes one image at a time (slicing, set at load) and in tiles above
1024 x 1024 px; a CUDA out-of-memory error becomes `OutOfMemory` with the adapter
removed and the cache freed.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Sequence

import torch
from PIL import Image

from errors import Cancelled, OutOfMemory
from pipeline.adapter import Adapter
from pipeline.backdrop import apply_backdrop
from pipeline.embeddings import trigger_embeddings_applied
from pipeline.faces import CLASS_WORD, TRIGGER
from pipeline.models import BaseModel
from pipeline.speed.fused_lora import lora_fused
from pipeline.styles import Style

# Denoising steps for real models with DPM++ 2M Karras (pipeline/models.py): 25-30 is
# where portrait workflows settle for this sampler; 28 leaves a margin over 25.
DEFAULT_STEPS = {"sd15": 28, "sd2": 28, "sdxl": 28}
DEMO_STEPS = 4  # tiny random models: more steps cannot make noise look better
GUIDANCE_SCALE = 6.0  # classifier-free guidance; 5-7 keeps skin natural in portraits
MAX_BATCH = 4  # images per pipeline call: bounds activation memory at 1024 px
TILE_ABOVE_PIXELS = 1024 * 1024  # decode in tiles above this many output pixels


# Something loaded into the pipeline for one run beside the adapter, yielding the pipeline calls' extra arguments.
Conditioning = Callable[[], ContextManager[dict]]


@dataclass
class GeneratedImage:
    image: Image.Image
    style_id: str
    seed: int
    is_demo: bool  # from a tiny random-weight model: the UI must label it "demo"


@contextmanager
def adapter_loaded(base: BaseModel, adapter: Adapter) -> Iterator[str]:
    """Load `adapter` (LoRA and token embeddings) into the shared pipeline for the block; yields its name."""
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
            base.pipe.unet.load_lora_adapter(adapter.unet_state_dict(), prefix="unet",
                                             adapter_name=name, metadata=metadata)
            with trigger_embeddings_applied(base, adapter.token_embeddings()):
                yield name
        finally:
            base.pipe.unload_lora_weights()  # removes every LoRA layer: the base is as loaded


def generate(base: BaseModel, adapter: Adapter, style: Style, *, count: int, seed: int, steps: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             cancel: threading.Event | None = None) -> list[GeneratedImage]:
    """`count` headshots in `style`; `progress(done, total)` counts denoising steps over all images."""
    return generate_styles(base, adapter, [style], count=count, seed=seed, steps=steps, cancel=cancel,
                           progress=None if progress is None else lambda i, done, total: progress(done, total))


def generate_styles(base: BaseModel, adapter: Adapter, styles: Sequence[Style], *, count: int, seed: int,
                    steps: int | None = None, progress: Callable[[int, int, int], None] | None = None,
                    cancel: threading.Event | None = None,
                    conditioning: Conditioning | None = None,
                    finish: Callable[[list[GeneratedImage], dict], list[GeneratedImage]] | None = None,
                    ) -> list[GeneratedImage]:
    """`count` headshots per style with the adapter loaded ONCE for all of them (SDXL: ~3 s per load on CPU).

    `progress(style_index, done, total)` counts denoising steps within a style, never past `total`.
    `conditioning`: more to load beside the adapter for the run, e.g. the face adapter on the person's photos
    (`pipeline.instant.face_conditioning`, Studio mode's option); it yields the pipeline calls' extra arguments.
    `finish(images, pipe_kwargs)`: run on the images while all of that is still loaded (pipeline/recipe/finish.py:
    rank the candidates, redraw the kept faces with the same model); its images are the ones returned.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    results: list[GeneratedImage] = []
    out_of_memory = False
    try:
        # With `base.speed.fuse_lora` the LoRA is folded into a copy of the weights for the run (pipeline/speed).
        loaded = lora_fused(base, adapter) if base.speed.fuse_lora else adapter_loaded(base, adapter)
        with loaded, (conditioning() if conditioning else nullcontext({})) as pipe_kwargs:
            results = render_styles(base, styles, count=count, seed=seed, steps=steps, progress=progress,
                                    cancel=cancel, pipe_kwargs=pipe_kwargs)
            if finish is not None:
                results = finish(results, pipe_kwargs)
    except torch.OutOfMemoryError:
        out_of_memory = True  # raised below, outside the handler, so the traceback's tensors die
    if out_of_memory:
        if base.device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemory()
    return results


def render_styles(base: BaseModel, styles: Sequence[Style], *, count: int, seed: int, steps: int | None = None,
                  subject: str = f"{TRIGGER} {CLASS_WORD}", pipe_kwargs: dict | None = None,
                  progress: Callable[[int, int, int], None] | None = None,
                  cancel: threading.Event | None = None) -> list[GeneratedImage]:
    """`count` images per style with whatever the caller has loaded into the pipeline (a LoRA, a face adapter).

    `subject` is what the prompt portrays (the trained trigger token by default); `pipe_kwargs` go to every
    pipeline call unchanged (e.g. Instant mode's `ip_adapter_image_embeds`). No lock, no loading: the caller
    holds the base's lock and owns whatever it loaded.
    """
    results: list[GeneratedImage] = []
    for i, style in enumerate(styles):
        report = None if progress is None else (lambda done, total, i=i: progress(i, done, total))
        results += _one_style(base, style, count=count, seed=seed, steps=steps, progress=report, cancel=cancel,
                              subject=subject, pipe_kwargs=pipe_kwargs or {})
    return results


def _one_style(base: BaseModel, style: Style, *, count: int, seed: int, steps: int | None,
               progress: Callable[[int, int], None] | None, cancel: threading.Event | None,
               subject: str = f"{TRIGGER} {CLASS_WORD}", pipe_kwargs: dict | None = None) -> list[GeneratedImage]:
    steps = steps or (DEMO_STEPS if base.is_demo else DEFAULT_STEPS[base.family])
    width, height = style.size_for(base.family, base.is_demo, base.resolution)
    prompt = style.prompt(subject)
    negative = style.negative_prompt()
    total, done = count * steps, 0
    results: list[GeneratedImage] = []
    vae = base.pipe.vae
    if width * height > TILE_ABOVE_PIXELS:
        vae.enable_tiling()
    else:
        vae.disable_tiling()

    def on_step(pipe, step_index, timestep, callback_kwargs):
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise Cancelled()  # unwinds through adapter_loaded's finally: the adapter is removed
        # Some schedulers call back more often than `steps` (SD1.5's PNDM: steps + 1); the
        # count is capped per batch so progress never passes 100 %.
        done = min(done + n_in_batch, batch_end)
        if progress is not None:
            progress(done, total)
        return callback_kwargs

    for start in range(0, count, MAX_BATCH):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        seeds = list(range(seed + start, seed + min(count, start + MAX_BATCH)))
        n_in_batch = len(seeds)
        batch_end = (start + n_in_batch) * steps
        # One generator per image: image i's noise depends only on seed + i, not on the batching.
        generators = [torch.Generator(device=base.device).manual_seed(s) for s in seeds]
        with torch.inference_mode():
            images = base.pipe(prompt=[prompt] * n_in_batch, negative_prompt=[negative] * n_in_batch,
                               width=width, height=height, num_inference_steps=steps,
                               guidance_scale=GUIDANCE_SCALE, generator=generators,
                               callback_on_step_end=on_step, **(pipe_kwargs or {})).images
        done = batch_end
        if style.exact_backdrop is not None:  # a team's look: its colour made exact, before scoring and marking
            images = [apply_backdrop(image, style.exact_backdrop) for image in images]
        results += [GeneratedImage(image=im, style_id=style.id, seed=s, is_demo=base.is_demo)
                    for im, s in zip(images, seeds)]
    return results
