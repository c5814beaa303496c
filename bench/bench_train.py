"""Benchmark: our LoRA training step vs the plain diffusers DreamBooth-LoRA recipe, same model, data and settings.

    python bench/bench_train.py                      # CPU, both tiny families (seconds)
    python bench/bench_train.py --arch sdxl --steps 30   # GPU, real SDXL architecture, random weights

"Ours" is `pipeline.train_lora.train_lora`, imported, never copied. Its step time is
measured between two of its own progress reports (after `--warmup` steps and at the
end), so set-up (latent/text caching, adapter injection) is excluded from the step
time and reported separately as "setup".

"Baseline" follows diffusers examples/advanced_diffusion_training/
train_dreambooth_lora_sdxl_advanced.py as LoRA Ease runs it (`--cache_latents`,
`--train_text_encoder_ti`): the VAE posteriors are cached once, the text encoder(s)
encode the captions EVERY step (`encode_prompt`), with gradients into the WHOLE token
embedding tables (fp32) during the pivotal phase and the rows other than the trigger's
restored after each optimizer step, as its `TokenEmbeddingsHandler.retract_embeddings`
does; the forward runs under autocast with frozen weights in the half dtype and LoRA
weights in fp32, default `torch.optim.AdamW`, min-SNR weighting, and the loss is read
with `.item()` every step for the progress bar. Rank, alpha, learning rates, batch size,
resolution, pivotal fraction, gradient checkpointing and the number of steps are the
same for both.

`--optimizers` times the optimizer step alone on the recipe's LoRA tensors (random
values and gradients, the UNet itself built on the meta device, so real sizes cost only
the LoRA memory): ours, AdamW (fused on CUDA), against Prodigy (`prodigyopt`) with the
arguments LoRA Ease passes to the advanced script. Prodigy is not a dependency; without
it installed only AdamW is timed. The rest of a training step is the same for both, so
the difference is the whole per-step difference.

`--arch sd15|sdxl` builds the real-size UNet / VAE / text-encoder architectures
(configs below, matching SD1.5 and SDXL base 1.0) with random weights; on CUDA the
peak memory and model FLOPs utilisation (FLOPs of one UNet forward+backward counted
once with `torch.utils.flop_counter.FlopCounterMode`, over the peak dense bf16/fp16
throughput of the GPU) are reported too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads anything
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDPMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.training_utils import cast_training_params  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

from pipeline.embeddings import ENCODERS, trigger_ids  # noqa: E402
from pipeline.faces import TrainingExample, caption  # noqa: E402
from pipeline.models import BaseModel, load_base, pick_dtype, resolve_device, wrap_pipeline  # noqa: E402
from pipeline.tiny import _scheduler, tiny_tokenizer  # noqa: E402
from pipeline.train_lora import (  # noqa: E402
    TrainConfig,
    _loss,
    default_train_config,
    free_device_memory,
    images_to_tensor,
    pivotal_steps,
    sdxl_time_ids,
    train_lora,
    unet_lora_config,
)

# Peak dense tensor throughput (FLOP/s) in bf16/fp16, from NVIDIA's data sheets (no sparsity).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12,
              "T4": 65e12, "RTX 4090": 165e12}


# --- real-size architectures, random weights ------------------------------------------------------
def _clip_l() -> CLIPTextModel:  # SD1.5's and SDXL's first text encoder: CLIP ViT-L/14 text tower
    return CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                        num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                                        hidden_act="quick_gelu", projection_dim=768))


def _vae(size: int, scaling: float) -> AutoencoderKL:
    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                         sample_size=size, scaling_factor=scaling)


# The UNets of SD1.5 and SDXL base 1.0 (their unet/config.json, the fields that differ from diffusers' defaults).
REAL_UNETS = {
    "sd15": dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8),
    "sdxl": dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
                 cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816),
}


def build_real_size(arch: str, device: torch.device) -> BaseModel:
    dtype = pick_dtype(device)
    with torch.device(device):  # initialise straight on the device: 2.6B random parameters for SDXL
        if arch == "sd15":
            unet = UNet2DConditionModel(**REAL_UNETS["sd15"])
            pipe = StableDiffusionPipeline(vae=_vae(512, 0.18215), text_encoder=_clip_l(), tokenizer=tiny_tokenizer(),
                                           unet=unet, scheduler=_scheduler(), safety_checker=None,
                                           feature_extractor=None, requires_safety_checker=False)
        else:
            unet = UNet2DConditionModel(**REAL_UNETS["sdxl"])
            te2 = CLIPTextModelWithProjection(CLIPTextConfig(  # OpenCLIP ViT-bigG/14 text tower
                vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280))
            pipe = StableDiffusionXLPipeline(vae=_vae(1024, 0.13025), text_encoder=_clip_l(), text_encoder_2=te2,
                                             tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=unet,
                                             scheduler=_scheduler())
    pipe.to(device, dtype)
    # is_demo=False although the weights are random: benchmarks generate at the family's
    # real sizes and step counts (a demo model would use the tiny 64 px / 4-step path);
    # their images are never delivered to anyone.
    return wrap_pipeline(pipe, arch, f"random-{arch}", device, dtype, is_demo=False)


# --- the baseline: diffusers' advanced DreamBooth LoRA loop (pivotal tuning, cached latents) -------
def baseline_steps(base: BaseModel, examples: list[TrainingExample], config: TrainConfig, steps: int) -> float:
    """Seconds per step of the reference recipe, after `config.sync_every` warm-up steps."""
    pipe, unet, dev = base.pipe, base.pipe.unet, base.device
    mixed = dev.type == "cuda" and base.dtype != torch.float32
    autocast = dict(device_type=dev.type, dtype=base.dtype, enabled=mixed)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    alphas = scheduler.alphas_cumprod.to(dev)
    unet.add_adapter(unet_lora_config(config))
    cast_training_params(unet, dtype=torch.float32)
    params = [p for p in unet.parameters() if p.requires_grad]
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    # Pivotal tuning the reference way: whole embedding tables train in fp32.
    names = ENCODERS[base.family]
    tables = [getattr(pipe, n).get_input_embeddings().weight for n in names]
    originals = [t.data.clone() for t in tables]
    keep = []
    for name, table in zip(names, tables):
        mask = torch.ones(table.shape[0], dtype=torch.bool, device=dev)
        mask[trigger_ids(pipe, name)] = False
        keep.append(mask)
        table.data = table.data.float()
        table.requires_grad_(True)
    ti_steps = pivotal_steps(config)
    optimizer = torch.optim.AdamW([{"params": params, "lr": config.learning_rate, "weight_decay": config.weight_decay},
                                   {"params": tables, "lr": config.embedding_learning_rate, "weight_decay": 0.0}],
                                  betas=(0.9, 0.999), eps=1e-8)
    with torch.no_grad():  # --cache_latents
        dists = [pipe.vae.encode(images_to_tensor([e]).to(dev, base.dtype)).latent_dist for e in examples]
    captions = [e.caption for e in examples]
    time_ids = sdxl_time_ids(examples, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=mixed and base.dtype == torch.float16)
    started = None
    try:
        for step in range(steps):
            if step == config.sync_every:
                _sync(dev)
                started = time.perf_counter()
            if step == ti_steps:
                for table in tables:
                    table.requires_grad_(False)
            i = np.random.randint(len(examples), size=config.batch_size)
            latents = torch.cat([dists[j].sample() for j in i]) * pipe.vae.config.scaling_factor
            with torch.set_grad_enabled(step < ti_steps), torch.autocast(**autocast):
                prompts = [captions[j] for j in i]
                if base.family == "sdxl":
                    embeds, _, pooled, _ = pipe.encode_prompt(prompt=prompts, device=dev,
                                                              do_classifier_free_guidance=False)
                    added = {"text_embeds": pooled, "time_ids": time_ids[torch.as_tensor(i, device=dev)]}
                else:
                    embeds, _ = pipe.encode_prompt(prompts, dev, 1, False)
                    added = None
            noise = torch.randn_like(latents)
            t = torch.randint(0, scheduler.config.num_train_timesteps, (len(i),), device=dev)
            noisy = scheduler.add_noise(latents, noise, t)
            with torch.autocast(**autocast):
                pred = unet(noisy, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample
            loss = _loss(pred.float(), noise.float(), alphas[t], "epsilon", config.snr_gamma)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params + [tb for tb in tables if tb.requires_grad], config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
            if step < ti_steps:
                with torch.no_grad():  # retract_embeddings: only the trigger's rows may change
                    for table, original, mask in zip(tables, originals, keep):
                        table.data[mask] = original[mask].float()
            loss.detach().item()  # the example's per-step progress-bar readout
        _sync(dev)
        return (time.perf_counter() - started) / (steps - config.sync_every)
    finally:
        del optimizer, params
        for table, original in zip(tables, originals):
            table.requires_grad_(False)
            table.data = original
        unet.unload_lora()
        unet.disable_gradient_checkpointing()
        unet.eval()
        unet.requires_grad_(False)


# --- the optimizer step alone: ours (AdamW) vs Prodigy as LoRA Ease runs it -----------------------
# LoRA Ease / diffusers' advanced script README: --optimizer prodigy --learning_rate 1.0 (for every
# group: Prodigy refuses groups with different lrs) --adam_beta2 0.99 --adam_weight_decay 1e-4
# --prodigy_use_bias_correction --prodigy_safeguard_warmup, decoupled weight decay.
PRODIGY_ARGS = dict(lr=1.0, betas=(0.9, 0.99), weight_decay=1e-4, decouple=True, use_bias_correction=True,
                    safeguard_warmup=True)


def lora_shapes(arch: str, rank: int) -> list[torch.Size]:
    """Shapes of the recipe's trainable LoRA tensors on `arch`'s UNet (built on the meta device: no memory)."""
    config = REAL_UNETS.get(arch) or dict(load_base(arch, device="cpu").pipe.unet.config)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
        unet.add_adapter(unet_lora_config(TrainConfig(steps=1, rank=rank, alpha=rank, learning_rate=1e-4)))
    return [p.shape for p in unet.parameters() if p.requires_grad]


def optimizer_steps(arch: str, dev: torch.device, rank: int, steps: int = 10, repeats: int = 3) -> dict:
    """Seconds per optimizer step (fastest of `repeats`) of AdamW as `train_lora` builds it, and of Prodigy."""
    try:
        from prodigyopt import Prodigy
    except ImportError:
        Prodigy = None
    shapes = lora_shapes(arch, rank)
    n_params = sum(s.numel() for s in shapes)
    row = {"arch": arch, "device": str(dev), "rank": rank, "lora_tensors": len(shapes),
           "lora_mparams": round(n_params / 1e6, 2)}
    cuda = dev.type == "cuda"
    gen = torch.Generator(device=dev).manual_seed(0)
    best: dict[str, float] = {}
    for name in ("adamw", "prodigy") * repeats:  # alternate, so drift hits both alike
        if name == "prodigy" and Prodigy is None:
            continue
        params = [torch.nn.Parameter(0.01 * torch.randn(s, generator=gen, device=dev)) for s in shapes]
        for p in params:
            p.grad = 1e-3 * torch.randn(p.shape, generator=gen, device=dev)
        if name == "adamw":
            opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                                    fused=cuda, foreach=not cuda)
        else:
            opt = Prodigy(params, **PRODIGY_ARGS)
        opt.step()  # allocates the state
        _sync(dev)
        started = time.perf_counter()
        for _ in range(steps):
            opt.step()
        _sync(dev)
        best[name] = min(best.get(name, float("inf")), (time.perf_counter() - started) / steps)
        state = sum(v.numel() for st in opt.state.values() for v in st.values() if torch.is_tensor(v))
        row[f"{name}_state_per_param"] = round(state / n_params, 2)
        del opt, params
    row["adamw_step_ms"] = round(best["adamw"] * 1000, 2)
    if "prodigy" in best:
        row.update(prodigy_step_ms=round(best["prodigy"] * 1000, 2),
                   prodigy_over_adamw=round(best["prodigy"] / best["adamw"], 2))
    else:
        row["prodigy_step_ms"] = "not installed (pip install prodigyopt==1.1.2)"
    return row


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def ours_steps(base: BaseModel, examples: list[TrainingExample], config: TrainConfig) -> tuple[float, float]:
    """(seconds per step after the warm-up report, setup seconds) of pipeline.train_lora."""
    marks: list[float] = []
    t0 = time.perf_counter()
    train_lora(base, examples, config, progress=lambda p: marks.append(time.perf_counter()))
    warm_steps = config.sync_every
    per_step = (marks[-1] - marks[0]) / (config.steps - warm_steps)
    # setup = time before the first step, estimated by removing the steps up to the first report.
    return per_step, (marks[0] - t0) - warm_steps * per_step


def unet_step_flops(base: BaseModel, config: TrainConfig, res: int) -> float:
    """FLOPs of one UNet forward + backward at batch `config.batch_size` (LoRA layers injected)."""
    from torch.utils.flop_counter import FlopCounterMode
    unet, dev, bs = base.pipe.unet, base.device, config.batch_size
    lat = res // base.pipe.vae_scale_factor
    unet.add_adapter(unet_lora_config(config))
    cast_training_params(unet, dtype=torch.float32)
    try:
        x = torch.randn(bs, 4, lat, lat, device=dev)
        t = torch.randint(0, 1000, (bs,), device=dev)
        dim = unet.config.cross_attention_dim
        added = None
        if base.family == "sdxl":
            pooled = base.pipe.text_encoder_2.config.projection_dim
            added = {"text_embeds": torch.randn(bs, pooled, device=dev), "time_ids": torch.randn(bs, 6, device=dev)}
        with FlopCounterMode(display=False) as counter:
            with torch.autocast(dev.type, dtype=base.dtype, enabled=base.dtype != torch.float32):
                out = unet(x, t, encoder_hidden_states=torch.randn(bs, 77, dim, device=dev), added_cond_kwargs=added)
            out.sample.float().pow(2).mean().backward()
        return float(counter.get_total_flops())
    finally:
        unet.unload_lora()
        unet.zero_grad(set_to_none=True)
        unet.requires_grad_(False)


def photos(n: int, res: int) -> list[TrainingExample]:
    """Noise crops with per-photo captions and a source size, as prepare_examples makes them."""
    rng = np.random.default_rng(0)
    return [TrainingExample(Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)),
                            caption(f"head and shoulders, {c} background, even light"),
                            original_size=(res // 2 + i, res // 2 + i))
            for i, c in zip(range(n), ["white", "grey", "blue", "dark grey"] * n)]


def run(arch: str, args: argparse.Namespace) -> dict:
    dev = resolve_device(args.device)
    base = load_base(arch, device=str(dev)) if arch.startswith("tiny") else build_real_size(arch, dev)
    config = default_train_config(args.photos, base.family, steps_override=args.steps,
                                  free_memory_bytes=free_device_memory(dev))
    rank = args.rank or config.rank
    config = dataclasses.replace(config, sync_every=args.warmup, rank=rank, alpha=rank)
    examples = photos(args.photos, base.resolution)
    row = {"arch": arch, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dtype": str(base.dtype).replace("torch.", ""), "res": base.resolution, "steps": args.steps,
           "rank": config.rank, "batch": config.batch_size, "pivotal_steps": pivotal_steps(config),
           "grad_ckpt": config.gradient_checkpointing}
    results = {"ours": [], "baseline": []}
    peaks = {}
    for _ in range(args.repeats):  # alternate, so drift (thermal, caches) hits both alike
        for name in ("baseline", "ours"):
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            if name == "ours":
                per_step, setup = ours_steps(base, examples, config)
                row["ours_setup_s"] = round(setup, 3)
            else:
                per_step = baseline_steps(base, examples, config, args.steps)
            results[name].append(per_step)
            if dev.type == "cuda":
                peaks[name] = torch.cuda.max_memory_allocated(dev) / 2**30
    ours, baseline = min(results["ours"]), min(results["baseline"])
    row.update(ours_step_s=round(ours, 4), baseline_step_s=round(baseline, 4), speedup=round(baseline / ours, 2))
    if dev.type == "cuda":
        row.update(ours_peak_gib=round(peaks["ours"], 2), baseline_peak_gib=round(peaks["baseline"], 2))
    flops = unet_step_flops(base, config, base.resolution)
    row["unet_tflop_per_step"] = round(flops / 1e12, 4)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        peak = args.peak_tflops * 1e12 if args.peak_tflops else next(
            (v for k, v in PEAK_FLOPS.items() if k in name), None)
        if peak:
            row.update(ours_mfu=round(flops / ours / peak, 3), baseline_mfu=round(flops / baseline / peak, 3))
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["tiny", "tiny-sd", "tiny-sdxl", "sd15", "sdxl"], default="tiny",
                        help="tiny = both tiny families; sd15/sdxl = real-size random-weight architectures")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=40, help="training steps per measured run")
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the timing")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--rank", type=int, default=0, help="LoRA rank; 0 = the recipe's (32)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per loop, alternating; the fastest counts "
                             "(fewer than 5 is noisy on a shared 2-core CPU)")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="override the GPU's peak dense TFLOP/s")
    parser.add_argument("--optimizers", action="store_true",
                        help="time only the optimizer step: AdamW (ours) vs Prodigy, on the recipe's LoRA tensors")
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    torch.manual_seed(0)
    np.random.seed(0)
    rows = []
    for arch in (["tiny-sd", "tiny-sdxl"] if args.arch == "tiny" else [args.arch]):
        if args.optimizers:
            row = optimizer_steps(arch, resolve_device(args.device), args.rank or 32, repeats=args.repeats)
        else:
            row = run(arch, args)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
