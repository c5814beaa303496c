"""GPU benchmark of the face recipe on real-size random-weight SD1.5 and SDXL, in one go.

    python bench/bench_gpu.py                # one CUDA GPU; both architectures; < 8 min on one H100/H200
    python bench/bench_gpu.py --arch sdxl    # one architecture
    python bench/bench_gpu.py --dry-run      # CPU, tiny models, a few steps: the whole script in seconds

Per architecture, in the same process and on the same weights:
  1. speed: our training step (`pipeline.train_lora`, imported) vs the diffusers
     reference loop (bench/bench_train.py `baseline_steps`: the advanced DreamBooth
     script's pivotal tuning with cached latents), same recipe, alternating runs;
     ratio, peak VRAM of each, and MFU (UNet forward+backward FLOPs / step time / the
     GPU's peak dense bf16/fp16 throughput);
  2. time to the first headshot with the default recipe: from four screened fixture
     photos (real dlib screening, not timed) through `prepare_examples`,
     `default_train_config` (measured free memory decides gradient checkpointing),
     `train_lora` and `generate_styles` for one image of the first style at the
     default 28 DPM++ steps. The budget is 8 minutes (`BUDGET_S`).
Random weights make the images noise; times, memory and FLOPs are those of the real
architectures. Never part of the test suite, except `--dry-run` (tiny models, shapes
only), which tests/bench/test_bench_gpu.py runs.

Output: one JSON object per architecture on stdout (and `--out FILE`), e.g.
{"arch": "sdxl", "speedup": ..., "ours_peak_gib": ..., "first_headshot_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads anything
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.bench_train import PEAK_FLOPS, baseline_steps, build_real_size, ours_steps, photos, unet_step_flops  # noqa: E402
from pipeline.faces import prepare_examples  # noqa: E402
from pipeline.generate import generate_styles  # noqa: E402
from pipeline.models import BaseModel, load_base, resolve_device  # noqa: E402
from pipeline.styles import load_styles  # noqa: E402
from pipeline.train_lora import default_train_config, free_device_memory, pivotal_steps, train_lora  # noqa: E402

BUDGET_S = 8 * 60  # screened photos -> first headshot, per architecture, on one H100/H200
FIXTURE_PHOTOS = [ROOT / "tests" / "fixtures" / "faces" / f"obama_{i}.jpg" for i in range(1, 5)]
TINY = {"sd15": "tiny-sd", "sdxl": "tiny-sdxl"}


def screened_fixtures() -> list:
    """The four fixture portraits through the real ingest and screening, as the studio does it."""
    from privacy.ingest import IngestLimits, ingest
    from privacy.screening import ScreeningRules, screen_photo
    from settings import load_settings
    settings = load_settings({})
    limits, rules = IngestLimits.from_settings(settings), ScreeningRules.from_settings(settings)
    return [screen_photo(ingest(p.read_bytes(), limits), rules) for p in FIXTURE_PHOTOS]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def speed(base: BaseModel, args: argparse.Namespace) -> dict:
    """Ours vs the reference loop on the default recipe (steps shortened to `args.steps`)."""
    import dataclasses
    dev = base.device
    config = default_train_config(4, base.family, steps_override=args.steps, free_memory_bytes=free_device_memory(dev))
    config = dataclasses.replace(config, sync_every=args.warmup)
    examples = photos(4, base.resolution)
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    peaks: dict[str, float | None] = {}
    for _ in range(args.repeats):  # alternate, so drift hits both alike
        for name in ("baseline", "ours"):
            _reset_peak(dev)
            per_step = (ours_steps(base, examples, config)[0] if name == "ours"
                        else baseline_steps(base, examples, config, args.steps))
            times[name].append(per_step)
            peaks[name] = _peak_gib(dev)
    ours, baseline = min(times["ours"]), min(times["baseline"])
    row = {"steps": args.steps, "rank": config.rank, "batch": config.batch_size,
           "pivotal_steps": pivotal_steps(config), "grad_ckpt": config.gradient_checkpointing,
           "memory_note": config.memory_note, "ours_step_s": round(ours, 4), "baseline_step_s": round(baseline, 4),
           "speedup": round(baseline / ours, 3), "ours_peak_gib": peaks["ours"], "baseline_peak_gib": peaks["baseline"]}
    flops = unet_step_flops(base, config, base.resolution)
    row["unet_tflop_per_step"] = round(flops / 1e12, 4)
    if dev.type == "cuda":
        gpu = torch.cuda.get_device_name(dev)
        peak = args.peak_tflops * 1e12 if args.peak_tflops else next((v for k, v in PEAK_FLOPS.items() if k in gpu), None)
        if peak:
            row.update(ours_mfu=round(flops / ours / peak, 3), baseline_mfu=round(flops / baseline / peak, 3))
    return row


def first_headshot(base: BaseModel, screened: list, args: argparse.Namespace) -> dict:
    """Screened photos -> the first headshot with the default recipe, timed stage by stage."""
    dev = base.device
    style = next(iter(load_styles().values()))
    _reset_peak(dev)
    _sync(dev)
    t0 = time.perf_counter()
    examples = prepare_examples(screened, base.resolution)
    config = default_train_config(len(examples), base.family, steps_override=args.first_steps,
                                  free_memory_bytes=free_device_memory(dev))
    t1 = time.perf_counter()
    adapter = train_lora(base, examples, config)
    _sync(dev)
    t2 = time.perf_counter()
    [image] = generate_styles(base, adapter, [style], count=1, seed=0, steps=args.denoise_steps)
    _sync(dev)
    t3 = time.perf_counter()
    expected = style.size_for(base.family, base.is_demo, base.resolution)
    # Shapes: what the dry run checks on the tiny models, and the real run on the real ones.
    assert image.image.size == expected, (image.image.size, expected)
    assert all(e.image.size == (base.resolution, base.resolution) for e in examples)
    vectors = adapter.token_embeddings()
    assert vectors and all(v.ndim == 2 and v.shape[1] == getattr(base.pipe, n).config.hidden_size
                           for n, v in vectors.items())
    total = t3 - t0
    return {"train_steps": config.steps, "first_prepare_s": round(t1 - t0, 2), "first_train_s": round(t2 - t1, 2),
            "first_image_s": round(t3 - t2, 2), "first_headshot_s": round(total, 2),
            "first_peak_gib": _peak_gib(dev), "within_budget": total < BUDGET_S, "image_size": list(image.image.size),
            "embeddings": {n: list(v.shape) for n, v in vectors.items()}}


def run(arch: str, screened: list, args: argparse.Namespace) -> dict:
    dev = resolve_device("cpu" if args.dry_run else args.device)
    started = time.perf_counter()
    base = load_base(TINY[arch], device=str(dev)) if args.dry_run else build_real_size(arch, dev)
    row = {"arch": arch, "dry_run": args.dry_run,
           "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dtype": str(base.dtype).replace("torch.", ""), "res": base.resolution,
           "unet_params_m": round(sum(p.numel() for p in base.pipe.unet.parameters()) / 1e6, 1),
           "build_s": round(time.perf_counter() - started, 1)}
    row.update(speed(base, args))
    row.update(first_headshot(base, screened, args))
    row["wall_s"] = round(time.perf_counter() - started, 1)
    del base
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["sd15", "sdxl", "both"], default="both")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models, a few steps (seconds)")
    parser.add_argument("--steps", type=int, default=30, help="steps per timed speed run")
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the speed timing")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per loop; the fastest counts")
    parser.add_argument("--first-steps", type=int, default=0, help="training steps to the first headshot; 0 = recipe")
    parser.add_argument("--denoise-steps", type=int, default=0, help="denoising steps of the first headshot; 0 = default")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="override the GPU's peak dense TFLOP/s")
    parser.add_argument("--out", type=Path, help="also write the rows here, one JSON object per line")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.steps, args.warmup, args.repeats = 3, 1, 1
        args.first_steps, args.denoise_steps = args.first_steps or 2, args.denoise_steps or 2
    elif not torch.cuda.is_available():
        parser.error("no CUDA GPU: use --dry-run on a CPU")
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    args.denoise_steps = args.denoise_steps or None
    torch.manual_seed(0)
    screened = screened_fixtures()
    rows = []
    for arch in (["sd15", "sdxl"] if args.arch == "both" else [args.arch]):
        row = run(arch, screened, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


if __name__ == "__main__":
    main()
