"""GPU benchmark of the face recipe on real-size random-weight SD1.5 and SDXL, in one go.

    python bench/bench_gpu.py                # one CUDA GPU; both architectures; 8.8 min on one H200 (--repeats 1)
    python bench/bench_gpu.py --arch sdxl    # one architecture
    python bench/bench_gpu.py --dry-run      # CPU, tiny models, a few steps: the whole script in seconds
    python bench/bench_gpu.py --arch sdxl --speed-compare --screened .gpurun/screened.pkl   # before/after, one go
    bash .gpurun/run.sh                      # that line on a bare GPU machine: bench/prepare_gpu_run.py writes it

`--speed-compare` (issue 29): on the same weights in the same process, first with no speed option on ("before":
our training step, one image through peft's unfused LoRA layers), then with every option of pipeline/speed that
applies on the device (channels-last, regional torch.compile on CUDA, the LoRA fused for generation) for the
stages below ("after"; the reference loop is left out). The row gains `before_*`, `speed_options`, `apply_s`,
`step_speedup` (step before / after), `second_image_s` and `image_speedup` (image before / the second image after:
the first after a compile pays for its graph, and is counted in `first_headshot_s`).

Per architecture, in the same process and on the same weights:
  1. speed: our training step (`pipeline.train_lora`, imported) vs the diffusers
     reference loop (bench/bench_train.py `baseline_steps`: the advanced DreamBooth
     script's pivotal tuning with cached latents), same recipe, alternating runs;
     ratio, peak VRAM of each, and MFU (UNet forward+backward FLOPs / step time / the
     GPU's peak dense bf16/fp16 throughput);
  2. Instant line: time from the same screened photos to the first Instant headshot
     through the real `pipeline.instant.instant_headshots` (face adapter loaded from
     disk, face crops, CLIP image embeddings, one image of the first style at the
     default 28 steps, adapter unloaded), with real-size random weights: h94's
     plus-face IP-Adapter of the family and its ViT-H/14 image encoder (632M
     parameters), written in h94/IP-Adapter's file layout (`REAL_FACE_ADAPTER`, by
     pipeline/tiny.py's builder) and loaded by the app's own loading code. Run twice:
     first with the adapter's files dropped from the page cache (best effort,
     posix_fadvise), then again (files cached). Scoring (dlib likeness, NSFW, on the
     CPU) is timed in neither line. Peak VRAM, and the Instant/Studio ratio below;
  3. time to the first headshot with the default recipe (Studio): from four screened
     fixture photos (real dlib screening, not timed) through `prepare_examples`,
     `default_train_config` (measured free memory decides gradient checkpointing),
     `train_lora` and `generate_styles` for one image of the first style at the
     default 28 DPM++ steps. The budget is 8 minutes (`BUDGET_S`).
Random weights make the images noise; times, memory and FLOPs are those of the real
architectures. Never part of the test suite, except `--dry-run` (tiny models, shapes
only), which tests/bench/test_bench_gpu.py runs.

Screening needs dlib's face models (face_recognition_models, ~100 MB). On a GPU machine
without them, screen here and take the result along:
    python bench/bench_gpu.py --save-screened .gpubench/screened.pkl   # here: the real screening, CPU
    python bench/bench_gpu.py --screened .gpubench/screened.pkl        # there (a pickle: only your own file)

Output: one JSON object per architecture on stdout (and `--out FILE`, written as each
architecture finishes), e.g. {"arch": "sdxl", "speedup": ..., "first_headshot_s": ...,
"instant_first_headshot_s": ..., "instant_over_studio": ..., ...}; each stage's numbers
also go to stderr as soon as measured ("# sdxl speed {...}").
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads anything
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.bench_train import (  # noqa: E402
    PEAK_FLOPS,
    REAL_UNETS,
    baseline_steps,
    build_real_size,
    ours_steps,
    photos,
    unet_step_flops,
)
from pipeline import instant  # noqa: E402
from pipeline.faces import prepare_examples  # noqa: E402
from pipeline.generate import generate_styles  # noqa: E402
from pipeline.models import BaseModel, load_base, resolve_device  # noqa: E402
from pipeline.speed import SpeedOptions, apply_to_base  # noqa: E402
from pipeline.styles import load_styles  # noqa: E402
from pipeline.tiny import TINY_FACE_ADAPTER_SIZE, FaceAdapterSize, save_tiny_face_adapter  # noqa: E402
from pipeline.train_lora import default_train_config, free_device_memory, pivotal_steps, train_lora  # noqa: E402
from settings import load_settings  # noqa: E402

BUDGET_S = 8 * 60  # screened photos -> first headshot, per architecture, on one H100/H200
FIXTURE_PHOTOS = [ROOT / "tests" / "fixtures" / "faces" / f"obama_{i}.jpg" for i in range(1, 5)]
TINY = {"sd15": "tiny-sd", "sdxl": "tiny-sdxl"}
_SCORE_STAGE = instant.score_stage
# h94/IP-Adapter's real sizes: models/image_encoder/config.json (OpenCLIP ViT-H/14's vision tower, 632M
# parameters, saved in float32: 2.5 GB) and the "plus" resamplers of tencent-ailab's IP-Adapter code (SD1.5:
# 768 wide, 12 heads; SDXL vit-h: 1280 wide, 20 heads; 16 queries; 4 blocks), for the real UNets' attention
# layers, in float16 files (98 MB for SD1.5, 848 MB for SDXL, as h94's).
REAL_FACE_ADAPTER = FaceAdapterSize(
    image_encoder=dict(hidden_size=1280, intermediate_size=5120, projection_dim=1024, num_hidden_layers=32,
                       num_attention_heads=16, image_size=224, patch_size=14, num_channels=3, hidden_act="gelu",
                       layer_norm_eps=1e-5),
    resampler_hidden={"sd15": 768, "sdxl": 1280}, resampler_queries=16, unets=REAL_UNETS, dtype=torch.float16)


def screened_fixtures(path: Path | None = None) -> list:
    """The four fixture portraits through the real ingest and screening, as the studio does it,
    or as an earlier `--save-screened` wrote them to `path`."""
    if path is not None:
        return pickle.loads(path.read_bytes())  # our own file, written by --save-screened
    from privacy.intake.ingest import IngestLimits, ingest
    from privacy.intake.screening import ScreeningRules, screen_photo
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


def _log(arch: str, stage: str, row: dict) -> None:
    """Each stage's numbers as soon as measured, so a run cut short still leaves them."""
    print(f"# {arch} {stage} {json.dumps(row)}", file=sys.stderr, flush=True)


def _drop_from_page_cache(directory: Path) -> bool:
    """Ask the kernel to forget the cached pages of every file under `directory` (best effort)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # only clean pages can be dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


def build_face_adapter(directory: Path, dry_run: bool) -> dict:
    """Random-weight plus-face adapters (both families) and their image encoder, in h94's layout."""
    started = time.perf_counter()
    save_tiny_face_adapter(directory, size=TINY_FACE_ADAPTER_SIZE if dry_run else REAL_FACE_ADAPTER)
    sizes = {p.relative_to(directory).as_posix(): p.stat().st_size for p in directory.rglob("*.safetensors")}
    return {"instant_build_s": round(time.perf_counter() - started, 1),
            "instant_files_mb": {k: round(v / 2**20, 1) for k, v in sorted(sizes.items())}}


def speed(base: BaseModel, args: argparse.Namespace) -> dict:
    """Ours vs the reference loop on the default recipe (steps shortened to `args.steps`)."""
    import dataclasses
    dev = base.device
    config = default_train_config(4, base.family, steps_override=args.steps, free_memory_bytes=free_device_memory(dev))
    config = dataclasses.replace(config, sync_every=args.warmup)
    examples = photos(4, base.resolution)
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    peaks: dict[str, float | None] = {}
    loops = ("ours",) if args.speed_compare else ("baseline", "ours")  # compare: ours before/after instead
    for _ in range(args.repeats):  # alternate, so drift hits both alike
        for name in loops:
            _reset_peak(dev)
            per_step = (ours_steps(base, examples, config)[0] if name == "ours"
                        else baseline_steps(base, examples, config, args.steps))
            times[name].append(per_step)
            peaks[name] = _peak_gib(dev)
    ours = min(times["ours"])
    row = {"steps": args.steps, "rank": config.rank, "batch": config.batch_size,
           "pivotal_steps": pivotal_steps(config), "grad_ckpt": config.gradient_checkpointing,
           "memory_note": config.memory_note, "ours_step_s": round(ours, 4), "ours_peak_gib": peaks["ours"]}
    if times["baseline"]:
        baseline = min(times["baseline"])
        row.update(baseline_step_s=round(baseline, 4), speedup=round(baseline / ours, 3),
                   baseline_peak_gib=peaks["baseline"])
    flops = unet_step_flops(base, config, base.resolution)
    row["unet_tflop_per_step"] = round(flops / 1e12, 4)
    if dev.type == "cuda":
        gpu = torch.cuda.get_device_name(dev)
        peak = (args.peak_tflops * 1e12 if args.peak_tflops
                else next((v for k, v in PEAK_FLOPS.items() if k in gpu), None))
        if peak:
            row["ours_mfu"] = round(flops / ours / peak, 3)
            if times["baseline"]:
                row["baseline_mfu"] = round(flops / min(times["baseline"]) / peak, 3)
    return row


def speed_before(base: BaseModel, args: argparse.Namespace) -> dict:
    """The "before" of `--speed-compare`, with no speed option on: our step time, and one image of the first
    style generated with a (briefly trained) adapter through peft's unfused layers, as the app did before."""
    import dataclasses
    dev = base.device
    part = {f"before_{k}": v for k, v in speed(base, args).items() if k in ("ours_step_s", "ours_peak_gib",
                                                                              "ours_mfu")}
    style = next(iter(load_styles().values()))
    config = dataclasses.replace(default_train_config(4, base.family, steps_override=2), sync_every=2)
    adapter = train_lora(base, photos(4, base.resolution), config)
    generate_styles(base, adapter, [style], count=1, seed=0, steps=2)  # first-call costs outside the timing
    _reset_peak(dev)
    _sync(dev)
    t0 = time.perf_counter()
    generate_styles(base, adapter, [style], count=1, seed=0, steps=args.denoise_steps)
    _sync(dev)
    part.update(before_image_s=round(time.perf_counter() - t0, 2), before_image_peak_gib=_peak_gib(dev))
    return part


def apply_speed_options(base: BaseModel, args: argparse.Namespace) -> dict:
    """The "after" of `--speed-compare`: every speed option that applies on the device (pipeline/speed)."""
    options = SpeedOptions.all_on(base.device)
    if args.no_compile:
        options = SpeedOptions(channels_last=True, fuse_lora=True)
    if options.compile_blocks:
        import torch._dynamo
        torch._dynamo.config.suppress_errors = True  # a graph dynamo cannot compile runs eagerly, logged
    started = time.perf_counter()
    apply_to_base(base, options)
    return {"speed_options": base.speed.to_dict(), "apply_s": round(time.perf_counter() - started, 2)}


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
    again = None
    if args.speed_compare:  # the first image after a compile pays for its graph: time a second one too
        generate_styles(base, adapter, [style], count=1, seed=1, steps=args.denoise_steps)
        _sync(dev)
        again = round(time.perf_counter() - t3, 2)
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
            "second_image_s": again,
            "embeddings": {n: list(v.shape) for n, v in vectors.items()}}


def _instant_once(base: BaseModel, screened: list, style, adapter_dir: Path) -> tuple[float, float, float, object]:
    """One `instant_headshots` call for one image of `style`: (prepare s, image s, total s, the image).

    Scoring is left out (the Studio line has none either): `instant.score_stage` is replaced, for the
    call only, by a stand-in that notes the time and keeps the generated images.
    """
    settings = load_settings({})
    marks: dict[str, float] = {}
    generated: list = []

    def unscored(report, images, references, **_):
        marks["done"] = time.perf_counter()
        generated.extend(images)
        return []

    def progress(p) -> None:
        if p.stage == "generating":
            marks.setdefault("generating", time.perf_counter())

    _sync(base.device)
    instant.score_stage = unscored
    try:
        t0 = time.perf_counter()
        instant.instant_headshots(
            base, screened, [style], adapter_id=str(adapter_dir), adapter_scale=settings.face_adapter_scale,
            count_per_style=1, seed=0, likeness_threshold=settings.likeness_threshold,
            unsafe_threshold=settings.unsafe_threshold, same_person_distance=settings.same_person_distance,
            progress=progress, offline=True)
    finally:
        instant.score_stage = _SCORE_STAGE
    [image] = generated
    return marks["generating"] - t0, marks["done"] - marks["generating"], marks["done"] - t0, image


def instant_first_headshot(base: BaseModel, screened: list, adapter_dir: Path) -> dict:
    """Screened photos -> the first Instant headshot through `pipeline.instant.instant_headshots`: first with
    the adapter's files dropped from the page cache, then again with them cached."""
    dev = base.device
    style = next(iter(load_styles().values()))
    dropped = _drop_from_page_cache(adapter_dir)
    _reset_peak(dev)
    prepare, image_s, total, image = _instant_once(base, screened, style, adapter_dir)
    peak = _peak_gib(dev)
    repeat_prepare, _, repeat_total, _ = _instant_once(base, screened, style, adapter_dir)
    assert image.image.size == style.size_for(base.family, base.is_demo, base.resolution), image.image.size
    # The shared pipeline is as it was: no face adapter left behind.
    assert base.pipe.image_encoder is None
    assert not any(instant.is_face_adapter_processor(p) for p in base.pipe.unet.attn_processors.values())
    return {"instant_page_cache_dropped": dropped, "instant_prepare_s": round(prepare, 2),
            "instant_image_s": round(image_s, 2), "instant_first_headshot_s": round(total, 2),
            "instant_peak_gib": peak, "instant_repeat_prepare_s": round(repeat_prepare, 2),
            "instant_repeat_s": round(repeat_total, 2), "instant_image_size": list(image.image.size)}


STAGES = ("speed", "instant", "studio")  # what `run` measures per architecture, in this order


def run(arch: str, screened: list, adapter_dir: Path, args: argparse.Namespace) -> dict:
    dev = resolve_device("cpu" if args.dry_run else args.device)
    started = time.perf_counter()
    base = load_base(TINY[arch], device=str(dev)) if args.dry_run else build_real_size(arch, dev)
    row = {"arch": arch, "dry_run": args.dry_run,
           "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dtype": str(base.dtype).replace("torch.", ""), "res": base.resolution,
           "unet_params_m": round(sum(p.numel() for p in base.pipe.unet.parameters()) / 1e6, 1),
           "build_s": round(time.perf_counter() - started, 1)}
    _log(arch, "build", row)
    if args.speed_compare:  # before: no speed option on; then every option that applies, for all stages below
        for stage, measure in (("before", speed_before), ("apply", apply_speed_options)):
            part = measure(base, args)
            _log(arch, stage, part)
            row.update(part)
    # Each stage is handed the model rather than closing over `base`, a name `del base` below removes.
    for stage, measure in (("speed", lambda b: speed(b, args)),
                           ("instant", lambda b: instant_first_headshot(b, screened, adapter_dir)),
                           ("studio", lambda b: first_headshot(b, screened, args))):
        if stage not in args.only:
            continue
        part = measure(base)
        _log(arch, stage, part)
        row.update(part)
    if "before_ours_step_s" in row and "ours_step_s" in row:
        row["step_speedup"] = round(row["before_ours_step_s"] / row["ours_step_s"], 3)
    if "before_image_s" in row and row.get("second_image_s"):
        row["image_speedup"] = round(row["before_image_s"] / row["second_image_s"], 3)
    if "instant_first_headshot_s" in row and "first_headshot_s" in row:
        row["instant_over_studio"] = round(row["instant_first_headshot_s"] / row["first_headshot_s"], 4)
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
    parser.add_argument("--denoise-steps", type=int, default=0,
                        help="denoising steps of the first headshot; 0 = default")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="override the GPU's peak dense TFLOP/s")
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES),
                        help="measure only these parts (default: all; the ratio needs instant and studio)")
    parser.add_argument("--speed-compare", action="store_true",
                        help="before/after: our step and one image with no speed option on, then every option "
                             "(pipeline/speed) for the stages; the reference loop is left out")
    parser.add_argument("--no-compile", action="store_true", help="with --speed-compare: leave torch.compile off")
    parser.add_argument("--out", type=Path, help="also write the rows here, one JSON object per line")
    parser.add_argument("--save-screened", type=Path, metavar="FILE",
                        help="screen the fixture photos (CPU), write them to FILE and stop")
    parser.add_argument("--screened", type=Path, metavar="FILE",
                        help="use the screened photos that --save-screened wrote (a machine without dlib's models)")
    args = parser.parse_args(argv)
    if args.save_screened:
        args.save_screened.parent.mkdir(parents=True, exist_ok=True)
        args.save_screened.write_bytes(pickle.dumps(screened_fixtures()))
        return []
    if args.dry_run:
        args.steps, args.warmup, args.repeats = 3, 1, 1
        args.first_steps, args.denoise_steps = args.first_steps or 2, args.denoise_steps or 2
    elif not torch.cuda.is_available():
        parser.error("no CUDA GPU: use --dry-run on a CPU")
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    args.denoise_steps = args.denoise_steps or None
    torch.manual_seed(0)
    screened = screened_fixtures(args.screened)
    versions = {name: _version(name) for name in ("torch", "diffusers", "transformers", "peft")}
    print(f"# versions {json.dumps(versions)}", file=sys.stderr, flush=True)
    adapter_dir = Path(tempfile.mkdtemp(prefix="bench-face-adapter-"))  # random weights only
    rows = []
    try:
        built = build_face_adapter(adapter_dir, args.dry_run)
        _log(args.arch, "face-adapter", built)
        if args.out:
            args.out.write_text("")
        for arch in (["sd15", "sdxl"] if args.arch == "both" else [args.arch]):
            row = run(arch, screened, adapter_dir, args)
            row.update(built, versions=versions)
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out:  # as each architecture finishes
                with args.out.open("a") as out:
                    out.write(json.dumps(row) + "\n")
    finally:
        shutil.rmtree(adapter_dir, ignore_errors=True)
    return rows


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
