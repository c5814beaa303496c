"""Prepare, on this machine, everything bench/bench_gpu.py needs on a bare GPU machine with no internet, in one go.

    python bench/prepare_gpu_run.py              # screened photos -> .gpurun/, missing wheels -> .whl/, run script
    python bench/prepare_gpu_run.py --no-wheels  # the same without pip (offline; tests)

What it writes (both folders are git-ignored; a device run carries them: `carry: [".whl", ".gpurun"]`):
  * `.gpurun/screened.pkl`: the four fixture portraits through the real ingest and screening (dlib's face models,
    which the GPU machine lacks), as `bench_gpu.py --save-screened` writes them; random-weight runs need no more
    of a face than that;
  * `.whl/*.whl`: a wheel for every distribution the benchmark imports that the GPU image does not hold
    (`GPU_IMAGE`, read from the device notes' package list), at the version installed here, for CPython 3.12 on
    manylinux x86-64 (the image's Python), fetched by pip (`pip download --no-deps --only-binary=:all:`). The
    list is found, not guessed: this script imports the benchmark and maps every loaded module to its
    distribution. `OPTIONAL` names those left out on purpose;
  * `.gpurun/run.sh`: the one command to run there (install the wheels to /tmp/site, then the benchmark with
    the speed comparison on SDXL, writing JSON lines and the log to $OUT).

Then, on the GPU machine: `bash .gpurun/run.sh` (it prints where each number went; README "For researchers").
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN_DIR = ROOT / ".gpurun"
WHEEL_DIR = ROOT / ".whl"
GPU_PYTHON = "3.12"
# pip matches manylinux tags exactly: the usual ones, newest first (device notes, "a Python package missing there").
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# The GPU image's Python packages ('cuda' image, as the device notes list them, read 2026-11-17).
GPU_IMAGE = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel
wrapt xarray xxhash yarl zipp
""".split())
# Imported here but not needed there: diffusers imports invisible-watermark (and its PyWavelets) only when installed,
# to stamp SDXL outputs (issue 26 removes that stamp); the others are optional speed-ups or TLS helpers of the HTTP
# stack, which an offline benchmark never uses.
OPTIONAL = frozenset({"invisible-watermark", "pywavelets", "brotli", "truststore", "httpx2", "httpcore2"})


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_IMPORTS = """
import json, sys
import bench.bench_gpu  # what the run imports
import privacy.intake.screening  # what unpickling the screened photos imports
print(json.dumps(sorted({m.split(".")[0] for m in list(sys.modules)})))
"""


def imported_distributions() -> dict[str, str]:
    """Every distribution (normalised name -> installed version) whose modules the benchmark loads, screened
    photos' classes included: asked of a fresh Python, so nothing this process loaded before (dlib's face
    models, after a screening) counts."""
    result = subprocess.run([sys.executable, "-c", _IMPORTS], cwd=ROOT, capture_output=True, text=True, check=True,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    owners = packages_distributions()
    names = {d for top in json.loads(result.stdout.splitlines()[-1]) for d in owners.get(top, [])}
    return {normalise(d): version(d) for d in names}


def missing_on_gpu(distributions: dict[str, str]) -> dict[str, str]:
    """Those the GPU image lacks and the run needs."""
    return {d: v for d, v in sorted(distributions.items()) if d not in GPU_IMAGE and d not in OPTIONAL}


def pip_download(name: str, pinned: str, into: Path) -> None:
    """One wheel for CPython 3.12 on manylinux x86-64 (or a pure-Python one), no dependencies."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", GPU_PYTHON, "--implementation", "cp", "-d", str(into), f"{name}=={pinned}"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command, check=True)


RUN_LIMIT_S = 560  # the benchmark's own limit there (the device runs a command for at most 600 s)


def run_script(arch: str, limit: int = RUN_LIMIT_S) -> str:
    """The one command for the GPU machine (`bash .gpurun/run.sh`)."""
    return f"""#!/bin/bash
# Written by bench/prepare_gpu_run.py. On a bare GPU machine: the carried wheels, then the benchmark in one go.
set -o pipefail
OUT="${{OUT:-$PWD/.gpurun/out}}"; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \\
    || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
# Under the device's 10-minute command limit, whatever a compile costs: each stage's numbers are in the log as
# soon as measured, so a run cut short still reports them.
time timeout {limit} python3 bench/bench_gpu.py --arch {arch} --speed-compare --screened .gpurun/screened.pkl \\
  --out "$OUT/bench_gpu.jsonl" 2>&1 | tee "$OUT/bench_gpu.log"
"""


def prepare(*, wheels: bool = True, arch: str = "sdxl", run_dir: Path = RUN_DIR, wheel_dir: Path = WHEEL_DIR,
            download=pip_download) -> dict:
    """Write the screened photos, the missing wheels and the run script; returns what was written."""
    missing = missing_on_gpu(imported_distributions())
    from bench.bench_gpu import screened_fixtures
    run_dir.mkdir(parents=True, exist_ok=True)
    screened = run_dir / "screened.pkl"
    screened.write_bytes(pickle.dumps(screened_fixtures()))
    fetched = []
    if wheels:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        for name, pinned in missing.items():
            if not any(normalise(p.name.split("-")[0]) == name for p in wheel_dir.glob("*.whl")):
                download(name, pinned, wheel_dir)
            fetched.append(name)
    script = run_dir / "run.sh"
    script.write_text(run_script(arch))
    script.chmod(0o755)
    size = sum(p.stat().st_size for p in wheel_dir.glob("*.whl")) if wheels else 0
    return {"screened": str(screened), "missing_on_gpu": missing, "wheels": fetched,
            "wheel_mb": round(size / 2**20, 1), "run_script": str(script)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-wheels", action="store_true", help="do not call pip (offline)")
    parser.add_argument("--arch", choices=["sd15", "sdxl", "both"], default="sdxl",
                        help="what the run script benchmarks (sdxl: the issue's targets, within 8 minutes)")
    args = parser.parse_args(argv)
    done = prepare(wheels=not args.no_wheels, arch=args.arch)
    for key, value in done.items():
        print(f"{key}: {value}")
    print('then, on the GPU machine (device run, carry [".whl", ".gpurun"]): bash .gpurun/run.sh')
    return done


if __name__ == "__main__":
    main()
