"""Run GPU work under `spaces.GPU` on a ZeroGPU Space, and as plain calls everywhere else.

ZeroGPU lends a GPU slice only for the duration of a decorated call, and a visitor's
quota is checked against the duration we request, so we ask for what the planned job
needs (`gpu_duration`, from the same step counts the trainer uses) instead of a guess.

`spaces` is imported only on ZeroGPU: importing it patches torch (and on ZeroGPU must
happen before CUDA is initialised), so on a laptop, in Docker or in tests it must stay
out of the process entirely. Detection reads `SPACES_ZERO_GPU` — the variable
`spaces.config.Config.zero_gpu` is parsed from — out of an environment mapping the
caller passes in (nothing in `pipeline/` reads `os.environ` itself).

Usage in app.py (the call and its arguments: studio/gpu_call.py):

    zerogpu.enable(os.environ)                       # first, before anything touches CUDA
    call = zerogpu.gpu(os.environ, duration=gpu_call.planned_seconds)(gpu_call.stream)
    ...                                              # build the app, load the model (in this thread)
    zerogpu.startup(os.environ, server_port=port)    # before uvicorn.run (no Blocks.launch)
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable, Mapping, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

ZERO_GPU_VARIABLE = "SPACES_ZERO_GPU"
_TRUE = ("1", "t", "true")  # spaces.config.boolean accepts exactly these (lower-cased)

# Estimated seconds on a ZeroGPU "large" slice (half an H200: 3g.71gb MIG, roughly an
# A100's throughput) — published SDXL/SD1.5 DreamBooth-LoRA figures, not measured here.
# Training: batch 2 at the family's native size (SDXL 1024 px; the slice's ~70 GB need
# no gradient checkpointing), the first half also through the text encoders (pivotal
# tuning): ~1.5x the former batch-1 figures (0.8 s SDXL, 0.25 s SD1.5).
SECONDS_PER_TRAIN_STEP = {"sdxl": 1.2, "sd2": 0.6, "sd15": 0.4}
# Generation: one image, 28 DPM++ steps plus VAE decode, likeness and safety scoring.
SECONDS_PER_IMAGE = {"sdxl": 6.0, "sd2": 3.0, "sd15": 1.5}
# Per call: weights moved onto the slice, latents cached once.
FIXED_SECONDS = {"sdxl": 30.0, "sd2": 20.0, "sd15": 15.0}
SAFETY_FACTOR = 1.25  # a job cut off at its requested duration loses all its work
MIN_DURATION_S = 30
# ZeroGPU refuses longer requests (not documented; "around a few minutes" per the
# ZeroGPU maintainers, 300 s in practice). A longer plan is clipped here and would be
# cut off: README "Hugging Face Space" says which settings fit.
MAX_DURATION_S = 300


def on_zero_gpu(environ: Mapping[str, str]) -> bool:
    """True on a ZeroGPU Space (the platform sets SPACES_ZERO_GPU=true)."""
    return environ.get(ZERO_GPU_VARIABLE, "").strip().lower() in _TRUE


def enable(environ: Mapping[str, str]) -> bool:
    """Import `spaces` now if on ZeroGPU (it must precede CUDA initialisation); a no-op elsewhere."""
    if not on_zero_gpu(environ):
        return False
    importlib.import_module("spaces")
    return True


def startup(environ: Mapping[str, str], *, server_port: int | None = None) -> None:
    """On ZeroGPU, run spaces' start-up (pack weights, report GPU functions); a no-op elsewhere.

    spaces runs it from a patched `gr.Blocks.launch`; an app served by uvicorn around
    `gr.mount_gradio_app` never calls `launch`, so it must call this once before serving,
    after the model is loaded (only weights in memory then are packed for the GPU).
    `server_port`: the port uvicorn serves on. A forked GPU worker closes its copies of the
    server's sockets, which spaces finds by the port of a launched Blocks' server; a mounted
    app has none, so the port is added to the ports spaces also closes (`reload_server_ports`).
    """
    if on_zero_gpu(environ):
        if server_port is not None:
            importlib.import_module("spaces.reloading").reload_server_ports.add(server_port)
        importlib.import_module("spaces.zero").startup()


def gpu_duration(n_photos: int, n_images: int, family: str, *, train_steps: int = 0) -> int:
    """Seconds of GPU to request for training on `n_photos` then generating `n_images`.

    The step count comes from the trainer's own defaults (or the `train_steps` override,
    HEADSHOT_TRAIN_STEPS), so the request follows any change to the training recipe.
    """
    if family not in SECONDS_PER_TRAIN_STEP:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(SECONDS_PER_TRAIN_STEP)}")
    if n_photos < 1 or n_images < 0:
        raise ValueError("need at least one photo and a non-negative number of images")
    # Imported here, not at the top: this module must stay importable before torch,
    # so that app.py can call `enable` first.
    from pipeline.train_lora import default_train_config

    steps = default_train_config(n_photos, family, steps_override=train_steps).steps
    planned = (FIXED_SECONDS[family] + steps * SECONDS_PER_TRAIN_STEP[family]
               + n_images * SECONDS_PER_IMAGE[family])
    return max(MIN_DURATION_S, math.ceil(planned * SAFETY_FACTOR))


# Instant mode (pipeline/instant.py), per call: the face adapter and its ViT-H image encoder (~2.5 GB) loaded
# into the pipeline and the photos embedded; then each image costs a little more than a plain one (the
# adapter's extra attention over the photos' tokens). Estimates like the ones above, not measurements.
INSTANT_FIXED_SECONDS = {"sdxl": 12.0, "sd15": 6.0}
INSTANT_IMAGE_OVERHEAD = 1.1
# What a ZeroGPU call gets when it asks for nothing (spaces.GPU's default duration): Instant mode is planned
# to fit in it, so a visitor's first headshots never need a longer request than the platform grants by default.
ZERO_GPU_DEFAULT_DURATION_S = 60


def instant_gpu_duration(n_images: int, family: str) -> int:
    """Seconds of GPU to request for one Instant call making `n_images` (no training)."""
    if family not in INSTANT_FIXED_SECONDS:
        raise ValueError(f"Instant mode has no face adapter for {family!r}; expected one of "
                         f"{sorted(INSTANT_FIXED_SECONDS)}")
    if n_images < 1:
        raise ValueError("need at least one image")
    planned = INSTANT_FIXED_SECONDS[family] + n_images * SECONDS_PER_IMAGE[family] * INSTANT_IMAGE_OVERHEAD
    return max(MIN_DURATION_S, math.ceil(planned * SAFETY_FACTOR))


def instant_images_within(budget_s: float, family: str) -> int:
    """The most images one Instant call can make within `budget_s` of GPU, as `instant_gpu_duration` plans (>= 0)."""
    if family not in INSTANT_FIXED_SECONDS:
        return 0
    per_image = SECONDS_PER_IMAGE[family] * INSTANT_IMAGE_OVERHEAD
    return max(0, math.floor((budget_s / SAFETY_FACTOR - INSTANT_FIXED_SECONDS[family]) / per_image))


def gpu(environ: Mapping[str, str], duration: Callable[..., float]) -> Callable[[F], F]:
    """Decorator: `spaces.GPU` with a per-call duration on ZeroGPU; returns the function unchanged elsewhere.

    `duration` receives the same arguments as the decorated function (spaces' dynamic
    duration) and returns seconds; the request is clipped to [MIN_DURATION_S, MAX_DURATION_S].
    """
    if not on_zero_gpu(environ):
        return lambda fn: fn
    spaces = importlib.import_module("spaces")

    def requested(*args: Any, **kwargs: Any) -> int:
        return int(min(MAX_DURATION_S, max(MIN_DURATION_S, math.ceil(duration(*args, **kwargs)))))

    return spaces.GPU(duration=requested)
