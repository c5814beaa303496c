"""Train one person's DreamBooth-style LoRA adapter on the shared base UNet, in-process, fast.

The recipe is diffusers' examples/dreambooth/train_dreambooth_lora(_sdxl).py (noise
prediction MSE on VAE latents of the instance photos, captioned with a rare token),
with what makes it fast on a shared GPU:
  * VAE latents (their mean and std) and text embeddings are computed ONCE before the
    loop; the example re-encodes every step. A fresh latent is still sampled from the
    cached distribution each step, as the example does with `latent_dist.sample()`.
    With `offload_encoders` the VAE and text encoders then leave the GPU.
  * Mixed precision on GPU: frozen weights stay in bf16/fp16, LoRA parameters in fp32
    under autocast (diffusers' `cast_training_params` habit); a GradScaler for fp16.
  * Gradient checkpointing where activations dominate memory (SDXL on GPU).
  * AdamW with `fused=True` on CUDA (one kernel for all parameters), `foreach=True` on CPU.
  * No host syncs per step: batch indices and timesteps are drawn up front, noise is
    drawn on the device, the loss is summed on the device and read (`.item()`) only
    every `sync_every` steps for progress.

Cancellation (`cancel` event) raises `Cancelled`; a CUDA out-of-memory error raises
`OutOfMemory` after the optimizer and LoRA parameters are freed. Either way, and on
success, the LoRA layers are removed from the shared UNet before returning.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from pipeline.adapter import Adapter
from pipeline.faces import TrainingExample
from pipeline.models import BaseModel
from privacy.errors import Cancelled, OutOfMemory

# Attention projections, as in diffusers' DreamBooth LoRA examples (`target_modules`).
UNET_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")


@dataclass(frozen=True)
class TrainConfig:
    steps: int  # optimizer steps
    rank: int  # LoRA rank r
    alpha: int  # LoRA alpha; = rank (scale 1), as the diffusers examples set it
    learning_rate: float  # constant, no warm-up (diffusers README: --lr_scheduler constant --lr_warmup_steps 0)
    batch_size: int = 1  # images per step
    weight_decay: float = 1e-2  # AdamW, diffusers' --adam_weight_decay default
    max_grad_norm: float = 1.0  # gradient clipping, diffusers' --max_grad_norm default
    gradient_checkpointing: bool = False  # trade compute for activation memory
    offload_encoders: bool = False  # move VAE + text encoders off the GPU once their outputs are cached
    sync_every: int = 10  # steps between host syncs (loss readout, progress callback)
    seed: int = 0  # noise, timesteps and batch order
    target_modules: tuple[str, ...] = UNET_TARGET_MODULES

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


def default_train_config(n_photos: int, family: str, steps_override: int = 0, *, on_gpu: bool = True) -> TrainConfig:
    """Defaults that scale with the number of photos.

    Sources: diffusers examples/dreambooth README.md and README_sdxl.md (LoRA: lr 1e-4,
    constant schedule, batch 1, 500 steps for 5 photos, `--rank` default 4, alpha = rank)
    and the widely used "~100 steps per instance image" rule of the HF DreamBooth blog
    post (huggingface.co/blog/dreambooth: faces need more steps than objects). We use
    100 steps per photo clamped to [400, 1500]; rank 8 up to 8 photos and 16 above
    (more photos carry more detail worth the capacity); lr 1e-4 for both families.
    """
    if n_photos < 1:
        raise ValueError("need at least one photo")
    steps = steps_override if steps_override > 0 else int(np.clip(100 * n_photos, 400, 1500))
    rank = 8 if n_photos <= 8 else 16
    big = family == "sdxl" and on_gpu
    return TrainConfig(steps=steps, rank=rank, alpha=rank, learning_rate=1e-4,
                       gradient_checkpointing=big, offload_encoders=big)


@dataclass(frozen=True)
class TrainProgress:
    step: int  # steps done
    total: int
    loss: float  # mean loss over the steps since the previous report
    eta_seconds: float


@dataclass
class TrainingTensors:
    """Everything the loop needs, on the training device, computed once."""

    latent_mean: torch.Tensor  # (n, 4, h, w), unscaled
    latent_std: torch.Tensor
    text_embeds: torch.Tensor  # (n, 77, d)
    pooled_embeds: torch.Tensor | None  # (n, d2), SDXL only
    time_ids: torch.Tensor | None  # (n, 6), SDXL only


def images_to_tensor(examples: Sequence[TrainingExample]) -> torch.Tensor:
    """RGB images -> (n, 3, H, W) float tensor in [-1, 1], the VAE's input range."""
    arrays = np.stack([np.asarray(e.image.convert("RGB"), dtype=np.float32) for e in examples])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


@torch.no_grad()
def encode_captions(base: BaseModel, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Text conditioning exactly as the pipeline computes it at generation time."""
    pipe = base.pipe
    if base.family == "sdxl":
        embeds, _, pooled, _ = pipe.encode_prompt(prompt=captions, device=base.device,
                                                  num_images_per_prompt=1, do_classifier_free_guidance=False)
        return embeds, pooled
    embeds, _ = pipe.encode_prompt(captions, base.device, 1, False)
    return embeds, None


@torch.no_grad()
def encode_images(base: BaseModel, pixels: torch.Tensor, chunk: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the VAE posterior per image (unscaled)."""
    vae = base.pipe.vae
    # Encode in fp32 when the VAE asks for it (SDXL's VAE overflows in fp16); it runs once.
    upcast = vae.dtype != torch.float32 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(torch.float32)
    try:
        means, stds = [], []
        for part in pixels.split(chunk):
            dist = vae.encode(part.to(base.device, vae.dtype)).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
        return torch.cat(means).float(), torch.cat(stds).float()
    finally:
        if upcast:
            vae.to(base.dtype)


def prepare_training_tensors(base: BaseModel, examples: Sequence[TrainingExample]) -> TrainingTensors:
    mean, std = encode_images(base, images_to_tensor(examples))
    embeds, pooled = encode_captions(base, [e.caption for e in examples])
    time_ids = None
    if base.family == "sdxl":
        h, w = examples[0].image.height, examples[0].image.width
        # (original size, crop top-left, target size): our crops are already at the target size.
        time_ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=torch.float32, device=base.device).repeat(len(examples), 1)
    return TrainingTensors(mean, std, embeds, pooled, time_ids)


def unet_lora_config(config: TrainConfig) -> LoraConfig:
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                      target_modules=list(config.target_modules))


def train_lora(base: BaseModel, examples: Sequence[TrainingExample], config: TrainConfig, *,
               progress: Callable[[TrainProgress], None] | None = None,
               cancel: threading.Event | None = None,
               step_hook: Callable[[int], None] | None = None) -> Adapter:
    """Train a LoRA adapter for the person in `examples`; the base pipeline is left exactly as it was.

    `step_hook(step)` runs before every step (tests inject failures through it).
    """
    if not examples:
        raise ValueError("no training examples")
    with base.lock:  # the shared UNet carries this adapter's layers until we return
        return _train_locked(base, examples, config, progress, cancel, step_hook)


def _train_locked(base, examples, config, progress, cancel, step_hook) -> Adapter:
    pipe, unet, dev = base.pipe, base.pipe.unet, base.device
    on_cuda = dev.type == "cuda"
    autocast_dtype = base.dtype if (on_cuda and base.dtype != torch.float32) else None
    adapter_name = f"train_{uuid.uuid4().hex[:12]}"
    encoders = [m for m in (pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if m is not None]
    out_of_memory = False
    optimizer = params = data = None
    try:
        data = prepare_training_tensors(base, examples)
        if config.offload_encoders and on_cuda:
            for m in encoders:
                m.to("cpu")
            torch.cuda.empty_cache()
        # LoRA A matrices start random: seed them (without touching the caller's RNG) so a
        # config + photos reproduce the same adapter.
        with torch.random.fork_rng(devices=[dev] if on_cuda else []):
            torch.manual_seed(config.seed)
            unet.add_adapter(unet_lora_config(config), adapter_name=adapter_name)
        cast_training_params(unet, dtype=torch.float32)  # trainable LoRA weights in fp32
        params = [p for p in unet.parameters() if p.requires_grad]
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8,
                                      weight_decay=config.weight_decay, fused=on_cuda, foreach=not on_cuda)
        run_steps(base, data, params, optimizer, config, autocast_dtype=autocast_dtype,
                  progress=progress, cancel=cancel, step_hook=step_hook)
        weights = get_peft_model_state_dict(unet, adapter_name=adapter_name)
        state = {f"unet.{k}": v.detach().to("cpu", torch.float32).clone() for k, v in weights.items()}
    except torch.OutOfMemoryError:
        out_of_memory = True  # raised below, outside this block, so the traceback's frames (and tensors) die
    finally:
        del optimizer, params, data
        _restore_base(base, encoders)
    if out_of_memory:
        raise OutOfMemory()
    effective = config.to_dict() | {"mixed_precision": str(autocast_dtype).replace("torch.", "") if autocast_dtype else "no",
                                    "resolution": examples[0].image.width, "n_photos": len(examples)}
    return Adapter(state_dict=state, family=base.family, base_model_id=base.model_id, rank=config.rank,
                   alpha=config.alpha, target_modules=tuple(config.target_modules), train_config=effective)


def run_steps(base: BaseModel, data: TrainingTensors, params: list[torch.nn.Parameter],
              optimizer: torch.optim.Optimizer, config: TrainConfig, *, autocast_dtype: torch.dtype | None = None,
              progress: Callable[[TrainProgress], None] | None = None, cancel: threading.Event | None = None,
              step_hook: Callable[[int], None] | None = None) -> float:
    """The optimisation loop on cached tensors; returns the mean loss of the last reporting window.

    Public so bench/ times exactly this loop (no copy of it).
    """
    unet, dev = base.pipe.unet, base.device
    scheduler = DDPMScheduler.from_config(base.pipe.scheduler.config)
    alphas = scheduler.alphas_cumprod.to(dev, torch.float32)
    prediction_type = scheduler.config.prediction_type
    vae_config = base.pipe.vae.config
    scaling, shift = vae_config.scaling_factor, getattr(vae_config, "shift_factor", None) or 0.0
    n, steps, bs = data.latent_mean.shape[0], config.steps, config.batch_size

    cpu_gen = torch.Generator().manual_seed(config.seed)
    order = torch.randint(0, n, (steps, bs), generator=cpu_gen).to(dev)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (steps, bs), generator=cpu_gen).to(dev)
    noise_gen = torch.Generator(device=dev).manual_seed(config.seed)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    loss_sum = torch.zeros((), device=dev)
    window, last_loss = 0, float("nan")
    started = time.perf_counter()

    for step in range(steps):
        if cancel is not None and cancel.is_set():  # a host-side flag: no device sync
            raise Cancelled()
        if step_hook is not None:
            step_hook(step)
        idx, t = order[step], timesteps[step]
        mean, std = data.latent_mean[idx], data.latent_std[idx]
        sample = mean + std * torch.randn(mean.shape, generator=noise_gen, device=dev)
        latents = (sample - shift) * scaling
        noise = torch.randn(latents.shape, generator=noise_gen, device=dev)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        target = noise if prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * latents
        added = None
        if data.pooled_embeds is not None:
            added = {"text_embeds": data.pooled_embeds[idx], "time_ids": data.time_ids[idx]}
        with torch.autocast(dev.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            pred = unet(noisy, t, encoder_hidden_states=data.text_embeds[idx], added_cond_kwargs=added).sample
        loss = F.mse_loss(pred.float(), target.float())
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm, foreach=True)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        window += 1
        if window == config.sync_every or step == steps - 1:
            last_loss = (loss_sum / window).item()  # the only host sync, every `sync_every` steps
            loss_sum.zero_()
            window = 0
            if progress is not None:
                elapsed = time.perf_counter() - started
                progress(TrainProgress(step=step + 1, total=steps, loss=last_loss,
                                       eta_seconds=elapsed / (step + 1) * (steps - step - 1)))
    return last_loss


def _restore_base(base: BaseModel, encoders: list[torch.nn.Module]) -> None:
    """Leave the shared pipeline as loaded: no LoRA layers, eval mode, encoders back, memory freed."""
    unet = base.pipe.unet
    if getattr(unet, "_hf_peft_config_loaded", False) or hasattr(unet, "peft_config"):
        unet.unload_lora()  # replaces every peft layer by its original module
    if unet.is_gradient_checkpointing:
        unet.disable_gradient_checkpointing()
    unet.eval()
    unet.requires_grad_(False)
    for m in encoders:
        m.to(base.device)
    if base.device.type == "cuda":
        torch.cuda.empty_cache()
