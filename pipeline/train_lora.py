"""Train one person's DreamBooth-style LoRA adapter on the shared base UNet, in-process, fast.

The recipe is LoRA Ease's face preset on diffusers' advanced DreamBooth script
(examples/advanced_diffusion_training/train_dreambooth_lora_sdxl_advanced.py): UNet
LoRA on the attention projections plus pivotal tuning (the trigger's input embeddings
in every text encoder train for the first half, pipeline/embeddings.py), per-photo
captions (pipeline/captions.py), min-SNR weighting, SDXL micro-conditioning with the
crop's true source size (`sdxl_time_ids`). Prior preservation is optional
(`prior_loss_weight`, off by default): its class set is made once per base model by the
model itself and cached (pipeline/recipe/prior_set.py), so no session waits for it twice.
Not taken over: Prodigy (see `default_train_config`). What makes it fast
on a shared GPU:
  * VAE latents (their mean and std) are computed ONCE before the loop, one image per
    VAE call; text conditioning once the trigger embeddings freeze. The example
    re-encodes every step. A fresh latent is still sampled from the cached distribution
    each step, as the example does with `latent_dist.sample()`. With `offload_encoders`
    the VAE, then the text encoders leave the GPU once their outputs are cached.
  * Mixed precision on GPU: frozen weights stay in bf16 (native only) or fp16, LoRA
    parameters and embeddings in fp32 under autocast (diffusers' `cast_training_params`
    habit); a GradScaler for fp16.
  * Gradient checkpointing only when the measured free memory needs it (`needs_checkpointing`).
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
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from errors import Cancelled, OutOfMemory
from pipeline.adapter import EMBEDDINGS_PREFIX, Adapter
from pipeline.embeddings import ENCODERS, initial_embeddings, retract, table_stds, trigger_embeddings_applied
from pipeline.faces import TrainingExample
from pipeline.models import BaseModel

if TYPE_CHECKING:
    from pipeline.recipe.prior_set import PriorSet

# Attention projections, as in diffusers' DreamBooth LoRA examples (`target_modules`).
UNET_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")


@dataclass(frozen=True)
class TrainConfig:
    steps: int  # optimizer steps
    rank: int  # LoRA rank r
    alpha: int  # LoRA alpha; = rank (scale 1), as the diffusers examples set it
    # UNet LoRA, constant, no warm-up (diffusers README: --lr_scheduler constant --lr_warmup_steps 0)
    learning_rate: float
    batch_size: int = 2  # images per step (LoRA Ease's face preset)
    weight_decay: float = 1e-2  # AdamW on the LoRA weights, diffusers' --adam_weight_decay default
    max_grad_norm: float = 1.0  # gradient clipping, diffusers' --max_grad_norm default
    # Pivotal tuning: train the trigger's input embeddings in every text encoder for the
    # first `pivotal_fraction` of the steps (diffusers' advanced script, --train_text_encoder_ti_frac 0.5),
    # then freeze them and cache the text conditioning for the rest. 0 turns it off.
    pivotal_fraction: float = 0.5
    embedding_learning_rate: float = 5e-4  # diffusers examples/textual_inversion README: --learning_rate=5.0e-04
    # After each step the trained vectors are rescaled by (table std / their std) ** this (pipeline/embeddings.py
    # `retract`; diffusers' advanced script's `retract_embeddings` uses 0.1). 0 turns it off.
    embedding_retraction: float = 0.1
    # Min-SNR loss weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
    # Weighting Strategy"; diffusers' --snr_gamma, recommended 5.0). 0 = plain MSE.
    snr_gamma: float = 5.0
    # Offset noise (crosslabs.org "Diffusion with Offset Noise"; diffusers' --noise_offset):
    # lets the model move the mean brightness, e.g. for dark studio backdrops. 0 = off, the
    # diffusers default; ~0.03-0.1 are the values used in practice.
    noise_offset: float = 0.0
    gradient_checkpointing: bool = False  # trade compute for activation memory; see `needs_checkpointing`
    offload_encoders: bool = False  # move VAE + text encoders off the GPU once their outputs are cached
    sync_every: int = 10  # steps between host syncs (loss readout, progress callback)
    seed: int = 0  # noise, timesteps, batch order, initial LoRA and embedding weights
    target_modules: tuple[str, ...] = UNET_TARGET_MODULES
    memory_note: str = ""  # why gradient checkpointing is on or off (saved in the effective config)
    # Prior preservation (DreamBooth's --prior_loss_weight, 1.0 there): weight of the class loss on the base
    # model's own "photo of a person" set, trained beside each batch. 0 = off.
    prior_loss_weight: float = 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


# Training memory per family ABOVE the loaded base weights (GiB), at batch 2 without checkpointing: LoRA
# weights, their gradients and AdamW state, the cached latents and text, and the activations. The caller
# measures the free memory with the base already on the GPU (`free_device_memory` after `load_base`), so the
# weights are in neither side of the comparison (they once were counted again: SDXL was estimated at 30.5 GiB
# against ~16 GiB measured above the weights, and a 40 GB A100 checkpointed and offloaded when it need not).
# sd15, sdxl: MEASURED by bench/bench_gpu.py on an H200 (2026-12-04, bf16, rank 32, README "For researchers"):
# training peak 4.43 / 22.38 GiB less the bf16 weights (UNet, text encoders, VAE: 1.07e9 / 3.47e9 parameters,
# 1.99 / 6.46 GiB). sd2: NOT measured: the earlier published-runs estimate (3.5 GiB resident + 2 x 5.5 GiB
# activations at 768 px) less its ~2.5 GiB of bf16 weights (UNet and OpenCLIP-H text encoder).
TRAINING_GIB_AT_BATCH_2 = {"sd15": 2.4, "sd2": 12.0, "sdxl": 15.9}
MEMORY_HEADROOM = 0.85  # plan to use at most this share of the free memory (fragmentation, VAE, spikes)


def needs_checkpointing(family: str, batch_size: int, free_memory_bytes: int | None) -> tuple[bool, str]:
    """(checkpoint?, reason) from the free memory measured with the base loaded; no GPU (None) never checkpoints.

    The need scales with the batch as if all of it were activations (at batch 2 it is mostly activations;
    scaling the rest too errs towards checkpointing).
    """
    if free_memory_bytes is None:
        return False, "no GPU: checkpointing off"
    free = free_memory_bytes / 2**30
    plain = TRAINING_GIB_AT_BATCH_2[family] * batch_size / 2
    if plain <= MEMORY_HEADROOM * free:
        return False, f"needs ~{plain:.1f} GiB above the loaded weights, {free:.1f} GiB free: checkpointing off"
    return True, f"needs ~{plain:.1f} GiB above the loaded weights, only {free:.1f} GiB free: checkpointing on"


def free_device_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device right now (`torch.cuda.mem_get_info`); None elsewhere."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def default_train_config(n_photos: int, family: str, steps_override: int = 0, *,
                         free_memory_bytes: int | None = None) -> TrainConfig:
    """The face recipe, scaled with the number of photos.

    Sources: LoRA Ease's face preset (multimodalart/lora-ease app.py, which drives
    diffusers' examples/advanced_diffusion_training/train_dreambooth_lora_sdxl_advanced.py):
    rank 32, batch 2, constant schedule, 75 steps per photo clamped to [500, 1500],
    pivotal tuning of new tokens in both text encoders; LoRA lr 1e-4 and alpha = rank
    from diffusers' DreamBooth LoRA README. LoRA Ease uses Prodigy (lr 1.0); we keep
    AdamW (fused on CUDA) at lr 1e-4, measured with `bench/bench_train.py --optimizers`
    (prodigyopt 1.1.2, CPU): its optimizer step is 2.4-3.0x AdamW's on the tiny models,
    where per-tensor overhead dominates as kernel launches do on a GPU (whole training
    step 1.02-1.12x), and 0.76-0.85x on the real-size LoRA tensors, where a CPU is
    bandwidth-bound. It reads two values back to the host per LoRA tensor per step
    (`.item()`: 2240 syncs per SDXL step, 560 modules), which stalls the GPU queue our loop
    keeps free of syncs, keeps twice AdamW's state, and takes one lr for all groups, so
    the embeddings could not keep their own (5e-4). Not measured on a GPU here: rerun
    the bench there before reconsidering. Min-SNR gamma 5 as diffusers recommends.
    Checkpointing only when the free GPU memory (`free_memory_bytes`, measured by the
    caller) would not hold the activations; the reason is saved in the adapter.
    """
    if n_photos < 1:
        raise ValueError("need at least one photo")
    steps = steps_override if steps_override > 0 else int(np.clip(75 * n_photos, 500, 1500))
    batch = 2
    checkpointing, note = needs_checkpointing(family, batch, free_memory_bytes)
    # Encoders leave the GPU once their outputs are cached when memory is tight (the same test).
    return TrainConfig(steps=steps, rank=32, alpha=32, learning_rate=1e-4, batch_size=batch,
                       gradient_checkpointing=checkpointing, offload_encoders=checkpointing, memory_note=note)


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
    token_ids: dict[str, torch.Tensor]  # encoder name -> (n, 77) caption token ids
    text_embeds: torch.Tensor | None  # (n, 77, d), cached once the trigger embeddings are frozen
    pooled_embeds: torch.Tensor | None  # (n, d2), SDXL only
    time_ids: torch.Tensor | None  # (n, 6), SDXL only: original size, crop top-left, target size


def images_to_tensor(examples: Sequence[TrainingExample]) -> torch.Tensor:
    """RGB images -> (n, 3, H, W) float tensor in [-1, 1], the VAE's input range."""
    arrays = np.stack([np.asarray(e.image.convert("RGB"), dtype=np.float32) for e in examples])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


def tokenize_captions(base: BaseModel, captions: list[str]) -> dict[str, torch.Tensor]:
    """Caption token ids per text encoder, padded and truncated as the pipelines do it."""
    out = {}
    for name in ENCODERS[base.family]:
        tokenizer = getattr(base.pipe, "tokenizer_2" if name == "text_encoder_2" else "tokenizer")
        out[name] = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids.to(base.device)
    return out


def encode_tokens(base: BaseModel, token_ids: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Text conditioning from token ids, exactly as the pipelines' `encode_prompt` computes it (no clip skip).

    SD1.5/2.x: the text encoder's last hidden state. SDXL: the penultimate hidden states
    of both encoders side by side, and the second encoder's projected pooled output.
    Gradients flow when trigger embeddings are being trained (pipeline/embeddings.py).
    """
    pipe = base.pipe
    if base.family != "sdxl":
        return pipe.text_encoder(token_ids["text_encoder"])[0], None
    hidden, pooled = [], None
    for name in ENCODERS["sdxl"]:
        out = getattr(pipe, name)(token_ids[name], output_hidden_states=True)
        if out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds, the pooled output
            pooled = out[0]
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1), pooled


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
def encode_images(base: BaseModel, pixels: torch.Tensor, chunk: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the VAE posterior per image (unscaled).

    One image per VAE call by default: at 1024 px an fp32 encode of 4 images at once took
    ~10 GB more (measured on CPU) while the UNet and text encoders are resident.
    """
    vae = base.pipe.vae
    # Encode in fp32 when the VAE asks for it (SDXL's VAE overflows in fp16); it runs once.
    upcast = vae.dtype != torch.float32 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(torch.float32)
    try:
        means, stds = [], []
        for part in pixels.split(chunk):
            dist = vae.encode(part.to(base.device, vae.dtype)).latent_dist
            means.append(dist.mean.float())
            stds.append(dist.std.float())
        return torch.cat(means), torch.cat(stds)
    finally:
        if upcast:
            vae.to(base.dtype)


def sdxl_time_ids(examples: Sequence[TrainingExample], device: torch.device) -> torch.Tensor:
    """SDXL micro-conditioning per example: (original h, w, crop top, left, target h, w).

    `original` is the size of the photo region the crop was resized from, as diffusers'
    SDXL scripts record it before resizing: a 300 px face crop enlarged to 1024 is
    learned under (300, 300), not under the (1024, 1024) that generation asks for, so
    the softness of the enlargement is not taught as the look of a 1024 px photo.
    """
    rows = []
    for e in examples:
        h, w = e.image.height, e.image.width
        oh, ow = e.original_size or (h, w)
        rows.append([oh, ow, 0, 0, h, w])
    return torch.tensor(rows, dtype=torch.float32, device=device)


def prepare_training_tensors(base: BaseModel, examples: Sequence[TrainingExample]) -> TrainingTensors:
    mean, std = encode_images(base, images_to_tensor(examples))
    token_ids = tokenize_captions(base, [e.caption for e in examples])
    time_ids = sdxl_time_ids(examples, base.device) if base.family == "sdxl" else None
    return TrainingTensors(mean, std, token_ids, None, None, time_ids)


def unet_lora_config(config: TrainConfig) -> LoraConfig:
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                      target_modules=list(config.target_modules))


def train_lora(base: BaseModel, examples: Sequence[TrainingExample], config: TrainConfig, *,
               progress: Callable[[TrainProgress], None] | None = None,
               cancel: threading.Event | None = None,
               step_hook: Callable[[int], None] | None = None, prior: "PriorSet | None" = None) -> Adapter:
    """Train a LoRA adapter (and the trigger's embeddings) for the person in `examples`; the base is left as it was.

    `step_hook(step)` runs before every step (tests inject failures through it). `prior`: the base model's
    class set, trained beside each batch at `config.prior_loss_weight` (pipeline/recipe/prior_set.py).
    """
    if not examples:
        raise ValueError("no training examples")
    if config.prior_loss_weight > 0 and prior is None:
        raise ValueError("prior_loss_weight > 0 needs the base model's class set")
    with base.lock:  # the shared UNet carries this adapter's layers until we return
        return _train_locked(base, examples, config, progress, cancel, step_hook, prior)


def _train_locked(base, examples, config, progress, cancel, step_hook, prior=None) -> Adapter:
    pipe, unet, dev = base.pipe, base.pipe.unet, base.device
    on_cuda = dev.type == "cuda"
    autocast_dtype = base.dtype if (on_cuda and base.dtype != torch.float32) else None
    adapter_name = f"train_{uuid.uuid4().hex[:12]}"
    encoders = [m for m in (pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if m is not None]
    out_of_memory = False
    optimizer = params = data = embeddings = None
    try:
        data = prepare_training_tensors(base, examples)
        if config.offload_encoders and on_cuda:
            pipe.vae.to("cpu")  # the text encoders stay while the trigger embeddings train
            torch.cuda.empty_cache()
        # LoRA A matrices and trigger vectors start random: seed them (without touching the
        # caller's RNG) so a config + photos reproduce the same adapter.
        with torch.random.fork_rng(devices=[dev] if on_cuda else []):
            torch.manual_seed(config.seed)
            unet.add_adapter(unet_lora_config(config), adapter_name=adapter_name)
        if config.pivotal_fraction > 0:
            embeddings = initial_embeddings(pipe, base.family, torch.Generator().manual_seed(config.seed))
            for v in embeddings.values():
                v.requires_grad_(True)
        cast_training_params(unet, dtype=torch.float32)  # trainable LoRA weights in fp32
        params = [p for p in unet.parameters() if p.requires_grad]
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        groups = [{"params": params, "lr": config.learning_rate, "weight_decay": config.weight_decay}]
        if embeddings:
            # No weight decay on embeddings: it would pull the trigger towards the zero vector.
            groups.append({"params": list(embeddings.values()), "lr": config.embedding_learning_rate,
                           "weight_decay": 0.0})
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, fused=on_cuda, foreach=not on_cuda)
        run_steps(base, data, params, optimizer, config, autocast_dtype=autocast_dtype,
                  progress=progress, cancel=cancel, step_hook=step_hook, embeddings=embeddings,
                  prior=prior if config.prior_loss_weight > 0 else None)
        weights = get_peft_model_state_dict(unet, adapter_name=adapter_name)
        state = {f"unet.{k}": v.detach().to("cpu", torch.float32).clone() for k, v in weights.items()}
        for name, v in (embeddings or {}).items():
            state[f"{EMBEDDINGS_PREFIX}{name}"] = v.detach().to("cpu", torch.float32).clone()
    except torch.OutOfMemoryError:
        out_of_memory = True  # raised below, outside this block, so the traceback's frames (and tensors) die
    finally:
        del optimizer, params, data, embeddings
        _restore_base(base, encoders)
    if out_of_memory:
        raise OutOfMemory()
    effective = config.to_dict() | {"mixed_precision": (str(autocast_dtype).replace("torch.", "")
                                                        if autocast_dtype else "no"),
                                    "resolution": examples[0].image.width, "n_photos": len(examples),
                                    "pivotal_steps": pivotal_steps(config),
                                    "prior_class_images": len(prior) if prior and config.prior_loss_weight else 0,
                                    "fp16_vae": base.vae_id}  # "" = the base model's own VAE
    return Adapter(state_dict=state, family=base.family, base_model_id=base.model_id, rank=config.rank,
                   alpha=config.alpha, target_modules=tuple(config.target_modules), train_config=effective)


def pivotal_steps(config: TrainConfig) -> int:
    """Steps during which the trigger embeddings train (the first ones)."""
    return int(config.steps * config.pivotal_fraction) if config.pivotal_fraction > 0 else 0


def run_steps(base: BaseModel, data: TrainingTensors, params: list[torch.nn.Parameter],
              optimizer: torch.optim.Optimizer, config: TrainConfig, *, autocast_dtype: torch.dtype | None = None,
              progress: Callable[[TrainProgress], None] | None = None, cancel: threading.Event | None = None,
              step_hook: Callable[[int], None] | None = None,
              embeddings: dict[str, torch.Tensor] | None = None, prior: "PriorSet | None" = None) -> float:
    """The optimisation loop on cached tensors; returns the mean loss of the last reporting window.

    With `embeddings` (trainable trigger vectors per text encoder) the captions are
    encoded every step for the first `pivotal_steps(config)` steps, through the encoders
    with the vectors swapped in; then the vectors freeze, the conditioning is cached once
    and (with `offload_encoders`) the text encoders leave the GPU.
    With `prior`, each step's UNet call also carries a batch of the class set (its own indices, timesteps and
    noise, so the instance half draws exactly what it draws without it) and the loss adds its class loss at
    `config.prior_loss_weight`.
    Public so bench/ times exactly this loop (no copy of it).
    """
    unet, dev = base.pipe.unet, base.device
    scheduler = DDPMScheduler.from_config(base.pipe.scheduler.config)
    alphas = scheduler.alphas_cumprod.to(dev, torch.float32)
    prediction_type = scheduler.config.prediction_type
    vae_config = base.pipe.vae.config
    scaling, shift = vae_config.scaling_factor, getattr(vae_config, "shift_factor", None) or 0.0
    n, steps, bs = data.latent_mean.shape[0], config.steps, config.batch_size
    ti_steps = pivotal_steps(config) if embeddings else 0
    stds = table_stds(base.pipe, base.family) if ti_steps and config.embedding_retraction else None
    autocast = dict(device_type=dev.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None)

    cpu_gen = torch.Generator().manual_seed(config.seed)
    order = torch.randint(0, n, (steps, bs), generator=cpu_gen).to(dev)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (steps, bs), generator=cpu_gen).to(dev)
    noise_gen = torch.Generator(device=dev).manual_seed(config.seed)
    if prior is not None:
        prior_gen = torch.Generator().manual_seed(config.seed + 1)
        prior_order = torch.randint(0, len(prior), (steps, bs), generator=prior_gen).to(dev)
        prior_times = torch.randint(0, scheduler.config.num_train_timesteps, (steps, bs), generator=prior_gen).to(dev)
        prior_noise_gen = torch.Generator(device=dev).manual_seed(config.seed + 1)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    loss_sum = torch.zeros((), device=dev)
    window, last_loss = 0, float("nan")
    started = time.perf_counter()

    def cache_conditioning() -> None:
        with torch.no_grad(), torch.autocast(**autocast):
            embeds, pooled = encode_tokens(base, data.token_ids)
        data.text_embeds = embeds.float()
        data.pooled_embeds = None if pooled is None else pooled.float()
        if config.offload_encoders and dev.type == "cuda":
            for name in ENCODERS[base.family]:
                getattr(base.pipe, name).to("cpu")
            torch.cuda.empty_cache()

    with trigger_embeddings_applied(base, embeddings):
        if ti_steps == 0:
            cache_conditioning()
        for step in range(steps):
            if cancel is not None and cancel.is_set():  # a host-side flag: no device sync
                raise Cancelled()
            if step_hook is not None:
                step_hook(step)
            if step == ti_steps and ti_steps > 0:  # the pivot: embeddings freeze, text is encoded once
                for v in embeddings.values():
                    v.requires_grad_(False)
                cache_conditioning()
            idx, t = order[step], timesteps[step]
            mean, std = data.latent_mean[idx], data.latent_std[idx]
            sample = mean + std * torch.randn(mean.shape, generator=noise_gen, device=dev)
            latents = (sample - shift) * scaling
            noise = torch.randn(latents.shape, generator=noise_gen, device=dev)
            if config.noise_offset:
                noise = noise + config.noise_offset * torch.randn((bs, latents.shape[1], 1, 1),
                                                                  generator=noise_gen, device=dev)
            a = alphas[t].view(-1, 1, 1, 1)
            noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
            target = noise if prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * latents
            with torch.autocast(**autocast):
                if step < ti_steps:
                    embeds, pooled = encode_tokens(base, {k: v[idx] for k, v in data.token_ids.items()})
                else:
                    embeds = data.text_embeds[idx]
                    pooled = None if data.pooled_embeds is None else data.pooled_embeds[idx]
                added = None
                if pooled is not None:
                    added = {"text_embeds": pooled, "time_ids": data.time_ids[idx]}
                unet_in = (noisy, t, embeds, added)
                if prior is not None:  # the class half, after the instance half, in the same UNet call
                    pt = prior_times[step]
                    p_noisy, p_target = _noised(prior.latent_mean[prior_order[step]],
                                                prior.latent_std[prior_order[step]], alphas[pt], prior_noise_gen,
                                                shift=shift, scaling=scaling, prediction_type=prediction_type)
                    unet_in = _with_class_half(unet_in, prior, p_noisy, pt)
                pred = unet(unet_in[0], unet_in[1], encoder_hidden_states=unet_in[2],
                            added_cond_kwargs=unet_in[3]).sample
            if prior is not None:
                pred, p_pred = pred.chunk(2)
            loss = _loss(pred.float(), target.float(), alphas[t], prediction_type, config.snr_gamma)
            if prior is not None:
                loss = loss + config.prior_loss_weight * _loss(p_pred.float(), p_target.float(), alphas[pt],
                                                               prediction_type, config.snr_gamma)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params + [v for v in (embeddings or {}).values() if v.requires_grad],
                                           config.max_grad_norm, foreach=True)
            scaler.step(optimizer)
            scaler.update()
            if stds is not None and step < ti_steps:
                retract(embeddings, stds, config.embedding_retraction)
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


def _noised(mean: torch.Tensor, std: torch.Tensor, alpha_bar: torch.Tensor, generator: torch.Generator, *,
            shift: float, scaling: float, prediction_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy latents, target) for cached latent distributions at timesteps with `alpha_bar`, as the loop does it."""
    latents = (mean + std * torch.randn(mean.shape, generator=generator, device=mean.device) - shift) * scaling
    noise = torch.randn(latents.shape, generator=generator, device=latents.device)
    a = alpha_bar.view(-1, 1, 1, 1)
    target = noise if prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * latents
    return a.sqrt() * latents + (1 - a).sqrt() * noise, target


def _with_class_half(unet_in: tuple, prior: "PriorSet", noisy: torch.Tensor, t: torch.Tensor) -> tuple:
    """The UNet's inputs with the class batch appended: its noisy latents, timesteps and the class prompt's
    conditioning (one row, repeated), in the instance half's dtypes."""
    inst_noisy, inst_t, embeds, added = unet_in
    n = noisy.shape[0]
    class_embeds = prior.text_embeds.to(embeds.dtype).expand(n, -1, -1)
    if added is not None:
        added = {"text_embeds": torch.cat([added["text_embeds"], prior.pooled_embeds.to(
                     added["text_embeds"].dtype).expand(n, -1)]),
                 "time_ids": torch.cat([added["time_ids"], prior.time_ids.expand(n, -1)])}
    return torch.cat([inst_noisy, noisy.to(inst_noisy.dtype)]), torch.cat([inst_t, t]), \
        torch.cat([embeds, class_embeds]), added


def _loss(pred: torch.Tensor, target: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str,
          snr_gamma: float) -> torch.Tensor:
    """MSE, per sample weighted by min(SNR, gamma) / SNR (epsilon) or / (SNR + 1) (v), as diffusers' scripts do."""
    if not snr_gamma:
        return F.mse_loss(pred, target)
    per_sample = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
    snr = alpha_bar / (1 - alpha_bar)
    weight = torch.clamp(snr, max=snr_gamma) / (snr + 1 if prediction_type == "v_prediction" else snr)
    return (per_sample * weight).mean()


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
