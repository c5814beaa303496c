"""Benchmark Instant mode against a Studio run: upload to first headshot, same model, styles and count, one process.

    python bench/bench_instant.py                       # tiny-sd on CPU, the recipe's training steps (4 photos: 500)
    python bench/bench_instant.py --model tiny-sdxl --train-steps 50

Both go through the studio exactly as the app calls them, from the uploaded bytes on:
  * Studio: `Studio.upload` (screen, seal) then `Studio.make_headshots` (train, generate, score, mark, seal);
  * Instant: `Studio.instant_headshots` (screen in memory, load the face adapter, generate, score, mark, seal).
"First headshot" is when the first generated batch leaves the pipeline (`pipeline.generate._one_style`
returns), "done" when the call returns with everything marked and sealed. The base model is loaded once
beforehand, outside the timings; Instant mode's face adapter is loaded inside its run, as in the app.
The face adapter is the tiny random-weight one (`--face-adapter`, default tiny-ip-adapter) for tiny bases.
Prints one `key=value` row with both timings and instant/studio ratios; `ok` when Instant stored no
identity blob and made as many images as the Studio run.

Measured (tiny-sd, CPU, 2 shared cores, 2 styles x 2 images, 4 photos, 500 recipe steps): Studio first
headshot 68.9 s, done 69.5 s; Instant first headshot 1.22 s, done 1.76 s: 0.018 of the Studio time to the
first headshot (56x sooner). On tiny models this is almost all the training Instant skips; not measured on
a GPU with real weights, where loading the face adapter and its ViT-H encoder (~2.5 GB) per run also counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads anything
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline.generate as generate  # noqa: E402
from pipeline.tiny import TINY_FACE_ADAPTER  # noqa: E402
from privacy.lifecycle.consent import Attestations  # noqa: E402
from privacy.store.vault import IDENTITY  # noqa: E402
from settings import load_settings  # noqa: E402
from studio.service import Studio  # noqa: E402

FACES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
PHOTOS = [f"obama_{i}.jpg" for i in range(1, 5)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd",
                        help="base model id (tiny-sd, tiny-sdxl, a hub id or a directory)")
    parser.add_argument("--face-adapter", default=TINY_FACE_ADAPTER, help="HEADSHOT_FACE_ADAPTER for the instant run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--styles", default="linkedin_classic,corporate_grey", help="comma-separated style ids")
    parser.add_argument("--count", type=int, default=2, help="headshots per style")
    parser.add_argument("--train-steps", type=int, default=0, help="0 = the recipe's steps for 4 photos (500)")
    args = parser.parse_args(argv)
    styles = args.styles.split(",")
    files = [(FACES / name).read_bytes() for name in PHOTOS]

    first_batch: list[float] = []
    real_one_style = generate._one_style

    def timed_one_style(*a, **k):
        images = real_one_style(*a, **k)
        first_batch.append(time.perf_counter())
        return images

    generate._one_style = timed_one_style
    with tempfile.TemporaryDirectory(prefix="bench-instant-") as tmp:
        studio = Studio(load_settings({
            "HEADSHOT_DATA_DIR": tmp, "HEADSHOT_BASE_MODEL": args.model, "HEADSHOT_DEVICE": args.device,
            "HEADSHOT_TRAIN_STEPS": str(args.train_steps), "HEADSHOT_FACE_ADAPTER": args.face_adapter,
            "HEADSHOT_LIKENESS_THRESHOLD": "0",  # random weights draw no face: keep every image, so both seal alike
        }))
        try:
            base = studio.base_model()  # loaded once, outside the timings
            consent = Attestations(own_photos=True, adult=True, purpose=True)

            studio_session = studio.start_session()
            studio.give_consent(studio_session, consent)
            first_batch.clear()
            start = time.perf_counter()
            assert studio.upload(studio_session, files).acceptable
            studio_run = studio.make_headshots(studio_session, styles, args.count)
            studio_done = time.perf_counter() - start
            studio_first = first_batch[0] - start

            instant_session = studio.start_session()
            studio.give_consent(instant_session, consent)
            first_batch.clear()
            start = time.perf_counter()
            instant_run = studio.instant.instant_headshots(instant_session, files, styles, args.count)
            instant_done = time.perf_counter() - start
            instant_first = first_batch[0] - start
            identity_blobs = [b for b in studio.vault.blobs(instant_session) if b.category == IDENTITY]
        finally:
            studio.close()
            generate._one_style = real_one_style
    row = {"model": args.model, "family": base.family, "device": str(base.device), "styles": len(styles),
           "count": args.count, "photos": len(PHOTOS), "train_steps": args.train_steps or "recipe",
           "studio_first_s": round(studio_first, 2), "studio_done_s": round(studio_done, 2),
           "instant_first_s": round(instant_first, 2), "instant_done_s": round(instant_done, 2),
           "first_ratio": round(instant_first / studio_first, 3), "done_ratio": round(instant_done / studio_done, 3),
           "images": len(instant_run.all_outputs), "instant_identity_blobs": len(identity_blobs),
           "ok": not identity_blobs and len(instant_run.all_outputs) == len(studio_run.all_outputs) > 0}
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
