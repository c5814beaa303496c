"""Which speed paths are on for a loaded base model: one frozen value, made from settings once, kept on the base."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpeedOptions:
    # UNet (and VAE) weights in channels-last memory order: cuDNN's convolutions run NHWC natively on tensor
    # cores, so NCHW costs a transpose around each of them. Same numbers up to the convolution's rounding.
    channels_last: bool = False
    # Regional torch.compile (diffusers' `compile_repeated_blocks`: every BasicTransformerBlock compiled once,
    # reused by all of them), on CUDA only: inductor's CPU code buys nothing for the CPU demo and costs
    # minutes of compiling on a small machine. The compile cost is paid at the first call after start-up.
    compile_blocks: bool = False
    compile_backend: str = "inductor"  # torch.compile's backend; "eager" traces without code generation (tests)
    # Generation with the LoRA folded into a working copy of the weights it touches (W + scale * B @ A), so the
    # denoising loop runs the plain UNet, without peft's two extra matmuls and Python wrapper per projection;
    # the touched weights are copied back bit for bit when the run ends (pipeline/speed/fused_lora.py).
    fuse_lora: bool = False

    @classmethod
    def all_on(cls, device: torch.device) -> "SpeedOptions":
        """Everything that applies on `device` (benchmarks' "after")."""
        return cls(channels_last=True, compile_blocks=device.type == "cuda", fuse_lora=True)

    @classmethod
    def from_settings(cls, settings) -> "SpeedOptions":
        return cls(channels_last=settings.speed_channels_last, compile_blocks=settings.speed_compile_unet,
                   fuse_lora=settings.speed_fuse_lora)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
