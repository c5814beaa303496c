"""`python app.py` as a ZeroGPU Space runs it (SPACES_ZERO_GPU=true), on a machine without a GPU.

Everything of the `spaces` package runs for real: its import-time torch patching, its start-up (weight
packing, the start-up report), `spaces.GPU` with its forked worker and pickling queues, its scheduler
client speaking HTTP to SPACES_ZERO_DEVICE_API_URL (the test's fake device API: tests/app/test_zerogpu_space.py).
Replaced are only the steps that need a CUDA build of torch and a lent GPU:

    torch.version.cuda              None in a CPU build; spaces picks its emulated memory statistics by it
    torch._C._cuda_init             absent in a CPU build; spaces keeps it to restore it (never called here)
    torch.cuda._is_in_bad_fork      a lambda in a CPU build, which spaces' start-up check cannot pickle
    spaces.zero.torch.init          in the worker: CUDA_VISIBLE_DEVICES and a first tensor on the lent GPU
    spaces.zero.torch.move          in the worker: the packed weights copied onto that GPU

    python tests/app/zerogpu_space.py                 serve the studio (as app.py)
    python tests/app/zerogpu_space.py --unpicklable   hand the GPU call an argument pickle refuses; print the outcome
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _no_cuda_in_this_build() -> None:
    raise RuntimeError("CPU build of torch: no CUDA here (tests/app/zerogpu_space.py)")


def _not_in_a_bad_fork() -> bool:
    return False


def emulate_a_gpu_device() -> None:
    """Import `spaces` first, as app.main does on ZeroGPU, with the GPU-only steps replaced (module docstring)."""
    import torch
    torch.version.cuda = "12.8"
    torch._C._cuda_init = _no_cuda_in_this_build
    torch.cuda._is_in_bad_fork = _not_in_a_bad_fork
    import spaces  # noqa: F401  (patches torch: SPACES_ZERO_GPU=true)
    from spaces.zero import torch as zero_torch
    zero_torch.init = lambda nvidia_uuid: None
    zero_torch.move = lambda callback=None: None


def report_the_model_state_at_spaces_startup() -> None:
    """The log says whether the base model was in memory when spaces packed the weights."""
    import spaces.zero
    startup = spaces.zero.startup

    def reported() -> None:
        from studio import gpu_call
        print(f"ZEROGPU-STARTUP model={gpu_call.studio().warm_up.state.state} "
              f"thread={threading.current_thread().name}", flush=True)
        startup()
    spaces.zero.startup = reported


def serve() -> int:
    emulate_a_gpu_device()
    report_the_model_state_at_spaces_startup()
    import app
    return app.main()


def hand_over_something_unpicklable() -> int:
    """The app's GPU call under spaces.GPU, given an order pickle refuses (a lock among Instant's photos)."""
    emulate_a_gpu_device()
    from settings import load_settings
    from studio import gpu_call, zerogpu
    from studio.service import Studio
    settings = load_settings(dict(os.environ))
    gpu_call.serve(Studio(settings))
    call = zerogpu.gpu(os.environ, duration=gpu_call.planned_seconds)(gpu_call.stream)
    order = gpu_call.GpuOrder("no-session", ("linkedin_classic",), 1, instant=True, photos=(threading.Lock(),))
    started = time.monotonic()
    try:
        gpu_call.follow(call, order, progress=lambda p: None, cancel=threading.Event())
        outcome = "returned"
    except BaseException as exc:  # what the line would record (studio.jobs.run_to_outcome logs its type)
        outcome = type(exc).__name__
    print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(hand_over_something_unpicklable() if "--unpicklable" in sys.argv[1:] else serve())
