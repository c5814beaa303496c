"""Where a training step's and a generation's time goes, under torch.profiler: top kernels and time outside them.

    python bench/bench_profile.py                 # one CUDA GPU: SDXL then SD1.5, real-size random weights
    python bench/bench_profile.py --arch sdxl     # one architecture
    python bench/bench_profile.py --speed         # with the speed options on (pipeline/speed), to compare
    python bench/bench_profile.py --dry-run       # CPU, tiny models: the whole script in seconds

Per architecture, on the same weights (bench/bench_train.py's real-size builders, as bench/bench_gpu.py):
  1. training: `pipeline.train_lora.train_lora`, imported, with the default recipe on four noise crops, profiled
     in two windows of `--active` steps after `--warmup` steps each: one in the pivotal phase (the trigger's
     embeddings train, so the text encoders run forward and backward every step) and one after the pivot
     (cached text conditioning). The window is opened and closed from train_lora's own `step_hook`, after a
     device sync, so set-up, the pivot's one text encoding and the adapter's extraction fall outside it;
  2. generation: `pipeline.generate.generate_styles`, one image of the first style with the adapter just
     trained, at `--denoise-steps` (adapter load and unload inside the window: they are part of every run).

Each window prints (and `--out FILE` keeps as JSON lines):
  * the top kernels by GPU time (name, calls, ms per step, share of the GPU's busy time);
  * the time outside kernels: the window's wall time against the union of kernel intervals (what is left are
    launch gaps and host stalls), kernel launches (count, host ms), host syncs (cudaStreamSynchronize and
    friends, `.item()`'s `aten::_local_scalar_dense`), dtype casts (`aten::_to_copy`: host ms, GPU ms);
  * labelled regions, host ms and GPU ms per step: UNet forward, backward (autograd), optimizer step, peft's LoRA
    layers, the text encoders (the pivotal pass), the VAE decoder. Regions nest (LoRA layers run inside the
    UNet's forward), so they do not add up; each is labelled by a forward hook on modules of that class.

On a CPU (`--dry-run`, tiny models) there are no kernels: the same tables list CPU operators instead, and every
number means nothing about a GPU (the rows say so): the dry run proves the script runs (tests/bench/
test_bench_profile.py), not where a GPU's time goes. Profiling adds overhead of its own, mostly on the host:
compare windows with each other, and take step times from bench/bench_gpu.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads anything
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from bench.bench_train import build_real_size, photos  # noqa: E402
from pipeline.generate import generate_styles  # noqa: E402
from pipeline.models import BaseModel, load_base, resolve_device  # noqa: E402
from pipeline.speed import SpeedOptions, apply_to_base  # noqa: E402
from pipeline.styles import load_styles  # noqa: E402
from pipeline.train_lora import TrainConfig, default_train_config, free_device_memory, train_lora  # noqa: E402

TINY = {"sd15": "tiny-sd", "sdxl": "tiny-sdxl"}
DRY_RUN_NOTE = "dry run on a CPU with tiny random models: these numbers say nothing about a GPU"
# Modules labelled by the class name of the module (or a base class): a forward hook opens a profiler range.
REGION_CLASSES = {"LoraLayer": "peft LoRA layers", "UNet2DConditionModel": "UNet forward",
                  "CLIPTextModel": "text encoders", "CLIPTextModelWithProjection": "text encoders",
                  "Decoder": "VAE decoder"}
# Host-side calls that wait for the device, and the op `.item()` / `bool(tensor)` run.
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy",
              "aten::_local_scalar_dense")
LAUNCH_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx")


# --- labelled regions -----------------------------------------------------------------------------
class RegionLabels:
    """Global module forward hooks that wrap every module of a `REGION_CLASSES` class in a profiler range."""

    def __init__(self):
        self._open: dict[int, list] = defaultdict(list)
        self._handles: list = []

    def _label(self, module: torch.nn.Module) -> str | None:
        for cls in type(module).__mro__:
            if cls.__name__ in REGION_CLASSES:
                return REGION_CLASSES[cls.__name__]
        return None

    def _enter(self, module, args) -> None:
        label = self._label(module)
        if label is not None:
            scope = record_function(label)
            scope.__enter__()
            self._open[id(module)].append(scope)

    def _exit(self, module, args, output) -> None:
        scopes = self._open.get(id(module))
        if scopes:
            scopes.pop().__exit__(None, None, None)

    def __enter__(self) -> "RegionLabels":
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
        self._handles = [register_module_forward_pre_hook(self._enter), register_module_forward_hook(self._exit)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()


# --- the analysis of one profiled window ----------------------------------------------------------
def _merged_busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals."""
    busy, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if start > end:
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return busy


def summarise(events, wall_s: float, steps: int, on_gpu: bool, top: int = 12) -> dict:
    """Top kernels (CPU operators on a CPU), time outside them, syncs, casts and labelled regions, per step."""
    per_step_ms = 1e-3 / steps  # profiler times are microseconds; report ms per step
    device_events = [e for e in events if e.device_type == DeviceType.CUDA]
    kernels: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    if on_gpu:
        for e in device_events:
            kernels[e.name][0] += 1
            kernels[e.name][1] += e.time_range.end - e.time_range.start
        busy_us = _merged_busy_us([(e.time_range.start, e.time_range.end) for e in device_events])
    else:  # no kernels: top CPU operators by their own (self) time
        for e in events:
            if e.device_type == DeviceType.CPU and e.name.startswith("aten::"):
                kernels[e.name][0] += 1
                kernels[e.name][1] += e.self_cpu_time_total
        busy_us = sum(t for _, t in kernels.values())
    ranked = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:top]
    wall_us = wall_s * 1e6

    def host_and_device(predicate) -> dict:
        chosen = [e for e in events if e.device_type == DeviceType.CPU and predicate(e.name)]
        return {"calls_per_step": round(len(chosen) / steps, 1),
                "host_ms": round(sum(e.cpu_time_total for e in chosen) * per_step_ms, 3),
                "gpu_ms": round(sum(e.device_time_total for e in chosen) * per_step_ms, 3) if on_gpu else None}

    regions = {label: host_and_device(lambda name, label=label: name == label)
               for label in dict.fromkeys(REGION_CLASSES.values())}
    regions["backward (autograd)"] = host_and_device(lambda n: n.startswith("autograd::engine::evaluate_function"))
    regions["optimizer step"] = host_and_device(lambda n: n.startswith("Optimizer.step#"))
    return {
        "steps": steps, "wall_ms_per_step": round(wall_us * per_step_ms, 3),
        "busy_ms_per_step": round(busy_us * per_step_ms, 3),
        "outside_kernels_ms_per_step": round(max(wall_us - busy_us, 0.0) * per_step_ms, 3) if on_gpu else None,
        "busy_share": round(busy_us / wall_us, 4) if wall_us else None,
        "top": [{"name": name[:90], "calls_per_step": round(n / steps, 1), "ms_per_step": round(t * per_step_ms, 3),
                 "share_of_busy": round(t / busy_us, 4) if busy_us else 0.0} for name, (n, t) in ranked],
        "launches": host_and_device(lambda n: n in LAUNCH_CALLS),
        "host_syncs": host_and_device(lambda n: n in SYNC_CALLS),
        "host_syncs_outside_optimizer": _syncs_outside_optimizer(events, steps),
        "dtype_casts": host_and_device(lambda n: n == "aten::_to_copy"),
        "regions": regions,
    }


def _syncs_outside_optimizer(events, steps: int) -> dict:
    """Host syncs not inside an optimizer step (on a CPU, AdamW reads its CPU step counters: no device waits)."""
    def inside(e) -> bool:
        while e is not None:
            if e.name.startswith("Optimizer.step#"):
                return True
            e = e.cpu_parent
        return False
    chosen = [e for e in events if e.device_type == DeviceType.CPU and e.name in SYNC_CALLS and not inside(e)]
    return {"calls_per_step": round(len(chosen) / steps, 1),
            "host_ms": round(sum(e.cpu_time_total for e in chosen) * 1e-3 / steps, 3), "gpu_ms": None}


def print_window(arch: str, title: str, row: dict, on_gpu: bool, out=None) -> None:
    """The window as plain-text tables (on stdout as it is when called, unless `out`)."""
    out = out or sys.stdout
    what = "kernels" if on_gpu else "CPU operators (dry run: no kernels)"
    print(f"\n== {arch} · {title}: {row['steps']} steps, {row['wall_ms_per_step']} ms/step wall, "
          f"{row['busy_ms_per_step']} ms/step busy ({what})", file=out)
    if row["outside_kernels_ms_per_step"] is not None:
        print(f"   outside kernels (launch gaps, host stalls): {row['outside_kernels_ms_per_step']} ms/step, "
              f"GPU busy {row['busy_share']:.1%} of the window", file=out)
    print(f"   top {what}:", file=out)
    print(f"   {'ms/step':>10} {'calls':>7} {'share':>7}  name", file=out)
    for k in row["top"]:
        print(f"   {k['ms_per_step']:>10.3f} {k['calls_per_step']:>7} {k['share_of_busy']:>7.1%}  {k['name']}",
              file=out)
    print(f"   {'host ms':>10} {'GPU ms':>8} {'calls':>7}  outside kernels and labelled regions (per step; regions "
          "nest)", file=out)
    rows = [("kernel launches", row["launches"]), ("host syncs", row["host_syncs"]),
            ("host syncs outside the optimizer step", row["host_syncs_outside_optimizer"]),
            ("dtype casts (aten::_to_copy)", row["dtype_casts"])] + list(row["regions"].items())
    for name, part in rows:
        gpu = "-" if part["gpu_ms"] is None else f"{part['gpu_ms']:.3f}"
        print(f"   {part['host_ms']:>10.3f} {gpu:>8} {part['calls_per_step']:>7}  {name}", file=out)


# --- profiled runs --------------------------------------------------------------------------------
def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _activities(dev: torch.device) -> list:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])


def profile_training(base: BaseModel, config: TrainConfig, warmup: int, active: int):
    """Train with the two windows profiled: (adapter, {window name: (events, wall s, steps)})."""
    dev = base.device
    first = (warmup, warmup + active)  # before the pivot: text encoders train every step
    pivot = first[1] + warmup  # the pivot, then `warmup` steps again before the second window
    second = (pivot + warmup, pivot + warmup + active)
    config = dataclasses.replace(config, steps=2 * pivot + 1, pivotal_fraction=pivot / (2 * pivot + 1),
                                 sync_every=10**6)
    assert int(config.steps * config.pivotal_fraction) == pivot
    windows: dict[str, tuple] = {}
    state: dict = {}

    def hook(step: int) -> None:
        for name, (start, stop) in (("training, pivotal phase", first), ("training, after the pivot", second)):
            if step == start:
                _sync(dev)
                state.update(prof=profile(activities=_activities(dev)), name=name, t0=time.perf_counter())
                state["prof"].__enter__()
            elif step == stop:
                _sync(dev)
                wall = time.perf_counter() - state["t0"]
                state["prof"].__exit__(None, None, None)
                windows[name] = (state["prof"].events(), wall, stop - start)

    with RegionLabels():
        adapter = train_lora(base, photos(4, base.resolution), config, step_hook=hook)
    return adapter, windows


def profile_generation(base: BaseModel, adapter, denoise_steps: int):
    dev = base.device
    style = next(iter(load_styles().values()))
    generate_styles(base, adapter, [style], count=1, seed=0, steps=2)  # warm-up: first-call costs outside
    with RegionLabels():
        _sync(dev)
        t0 = time.perf_counter()
        with profile(activities=_activities(dev)) as prof:
            generate_styles(base, adapter, [style], count=1, seed=0, steps=denoise_steps)
            _sync(dev)
        wall = time.perf_counter() - t0
    return prof.events(), wall, denoise_steps


def run(arch: str, args: argparse.Namespace) -> dict:
    dev = resolve_device("cpu" if args.dry_run else args.device)
    base = load_base(TINY[arch], device=str(dev)) if args.dry_run else build_real_size(arch, dev)
    options = SpeedOptions.all_on(dev) if args.speed else SpeedOptions()
    apply_to_base(base, options)
    on_gpu = dev.type == "cuda"
    config = default_train_config(4, base.family, free_memory_bytes=free_device_memory(dev))
    adapter, windows = profile_training(base, config, args.warmup, args.active)
    windows["generation, one image"] = profile_generation(base, adapter, args.denoise_steps)
    row = {"arch": arch, "dry_run": args.dry_run, "speed_options": options.to_dict(),
           "device": torch.cuda.get_device_name(dev) if on_gpu else "cpu", "dtype": str(base.dtype),
           "grad_ckpt": config.gradient_checkpointing, "windows": {}}
    if args.dry_run:
        row["note"] = DRY_RUN_NOTE
    for name, (events, wall, steps) in windows.items():
        row["windows"][name] = summarise(events, wall, steps, on_gpu)
        print_window(arch, name, row["windows"][name], on_gpu)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["sd15", "sdxl", "both"], default="both")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models, a few steps (seconds)")
    parser.add_argument("--speed", action="store_true", help="with the speed options on (pipeline/speed)")
    parser.add_argument("--warmup", type=int, default=2, help="unprofiled steps before each training window")
    parser.add_argument("--active", type=int, default=4, help="profiled training steps per window")
    parser.add_argument("--denoise-steps", type=int, default=10, help="denoising steps of the profiled image")
    parser.add_argument("--out", type=Path, help="also write the rows here, one JSON object per line")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.warmup, args.active, args.denoise_steps = 1, 2, 2
        print(f"# {DRY_RUN_NOTE}", flush=True)
    elif not torch.cuda.is_available():
        parser.error("no CUDA GPU: use --dry-run on a CPU")
    torch.manual_seed(0)
    rows = []
    for arch in (["sdxl", "sd15"] if args.arch == "both" else [args.arch]):
        row = run(arch, args)
        rows.append(row)
        if args.out:
            with args.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    main()
