"""CPU smoke benchmark: the real-size SD1.5 architecture (random weights) through 2 training steps and 1 image.

    python bench/bench_cpu_smoke.py            # ~4 min on 2 shared CPU cores (measured), ~8 GB of RAM

For a maintainer checking a new diffusers / peft / transformers / torch version: the
default recipe (rank 32, batch 2, pivotal tuning: step 1 trains the trigger embeddings,
step 2 runs on the cached conditioning) on the 859.5 M-parameter SD1.5 UNet at 512 px,
then one 512 x 640 headshot at 2 DPM++ steps with the adapter loaded, and checks what
must hold whatever the versions: 128 LoRA modules, finite loss and weights, trained
embeddings of the right width, the base bit-identical after unloading, the image size.
Prints the versions and the seconds of each stage; exits non-zero when a check fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.bench_train import build_real_size, photos  # noqa: E402
from pipeline.generate import generate_styles  # noqa: E402
from pipeline.styles import load_styles  # noqa: E402
from pipeline.train_lora import default_train_config, train_lora  # noqa: E402


def main() -> dict:
    import diffusers
    import peft
    import transformers
    row: dict = {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__,
                 "transformers": transformers.__version__}
    t0 = time.perf_counter()
    base = build_real_size("sd15", torch.device("cpu"))
    row["unet_params_m"] = round(sum(p.numel() for p in base.pipe.unet.parameters()) / 1e6, 1)
    before = {k: v.clone() for k, v in base.pipe.unet.state_dict().items()}
    t1 = time.perf_counter()
    losses: list[float] = []
    config = dataclasses.replace(default_train_config(4, "sd15", steps_override=2), sync_every=1)
    adapter = train_lora(base, photos(4, base.resolution), config, progress=lambda p: losses.append(p.loss))
    t2 = time.perf_counter()
    [image] = generate_styles(base, adapter, [load_styles()["linkedin_classic"]], count=1, seed=0, steps=2)
    t3 = time.perf_counter()
    after = base.pipe.unet.state_dict()
    lora_modules = len({k.rsplit(".lora_", 1)[0] for k in adapter.unet_state_dict()})
    checks = {
        "lora_modules_128": lora_modules == 128,
        "finite": all(torch.isfinite(torch.tensor(losses)).tolist())
        and all(torch.isfinite(v).all().item() for v in adapter.state_dict.values()),
        "embeddings": {k: list(v.shape) for k, v in adapter.token_embeddings().items()} == {"text_encoder": [1, 768]},
        "base_bit_identical": after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before),
        "image_512x640": image.image.size == (512, 640),
    }
    row.update(build_s=round(t1 - t0, 1), train_2_steps_s=round(t2 - t1, 1), image_2_steps_s=round(t3 - t2, 1),
               losses=[round(x, 4) for x in losses], checks=checks, ok=all(checks.values()))
    return row


if __name__ == "__main__":
    result = main()
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)
