"""Channels-last memory and regional torch.compile, applied once to a loaded base model (both are kept by it)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

from pipeline.speed.options import SpeedOptions

if TYPE_CHECKING:
    from pipeline.models import BaseModel


def apply_to_base(base: "BaseModel", options: SpeedOptions) -> "BaseModel":
    """Apply `options` to `base`'s modules and remember them on it (`base.speed`); returns `base`.

    Compilation is skipped off CUDA (see `SpeedOptions.compile_blocks`) unless the backend is "eager", which
    only traces: the demo on a CPU runs as before, and a test can still prove the wiring there.
    """
    if options == SpeedOptions():
        return base  # nothing on: the base is left exactly as loaded (its `speed` is this default already)
    if options.channels_last:
        for module in (base.pipe.unet, base.pipe.vae):
            module.to(memory_format=torch.channels_last)
    compiled = options.compile_blocks and (base.device.type == "cuda" or options.compile_backend == "eager")
    if compiled:
        # dynamic=False: training and generation shapes are fixed per family, so one graph per shape.
        base.pipe.unet.compile_repeated_blocks(backend=options.compile_backend, dynamic=False)
    # What is really on: a compile skipped on a CPU is recorded as off.
    base.speed = dataclasses.replace(options, compile_blocks=compiled)
    return base


def compiled_blocks(module: torch.nn.Module) -> int:
    """How many sub-modules of `module` have been compiled in place (`nn.Module.compile`)."""
    return sum(getattr(m, "_compiled_call_impl", None) is not None for m in module.modules())
