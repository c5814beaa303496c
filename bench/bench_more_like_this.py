"""Benchmark "more like this" against a full re-run: the same styles and count, with and without training.

    python bench/bench_more_like_this.py                       # tiny-sd on CPU, the recipe's steps (4 photos: 500)
    python bench/bench_more_like_this.py --model tiny-sdxl --train-steps 50 --repeats 1

Both go through the studio exactly as the app calls them: `Studio.make_headshots` (prepare,
train, seal the adapter, generate, score, mark, seal) and then `Studio.more_like_this`
(open the sealed adapter, generate, score, mark, seal) for the same session, styles and
count, owner-sealed as the app seals them, in one process with the model loaded once
beforehand. Runs alternate full / more and the fastest of each counts (a shared 2-core
CPU is noisy). Training calls are counted by wrapping `pipeline.engine.train_lora`: the
"more" runs must make none (`ok`). Prints one `key=value` row: full_s, its train_s,
more_s, more/full and the speed-up.

Measured (tiny-sd, CPU, 2 shared cores, 2 styles x 2 images, 4 photos, 500 recipe steps,
--repeats 2): full 72.3 s, of which training 71.1 s; more like this 1.0 s; 0.014 of the
full run (72x faster). On a GPU with a real model the share is larger, since generation
is then a bigger part of a job (engine.STAGE_WEIGHTS: ~0.30 of it).
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

import pipeline.engine as engine  # noqa: E402
from privacy.lifecycle.consent import Attestations  # noqa: E402
from settings import load_settings  # noqa: E402
from studio.service import Studio  # noqa: E402

FACES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
PHOTOS = [f"obama_{i}.jpg" for i in range(1, 5)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd",
                        help="base model id (tiny-sd, tiny-sdxl, a hub id or a directory)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--styles", default="linkedin_classic,corporate_grey", help="comma-separated style ids")
    parser.add_argument("--count", type=int, default=2, help="headshots per style")
    parser.add_argument("--train-steps", type=int, default=0, help="0 = the recipe's steps for 4 photos (500)")
    parser.add_argument("--repeats", type=int, default=3, help="full / more pairs; the fastest of each counts")
    args = parser.parse_args(argv)
    styles = args.styles.split(",")

    trainings = []
    real_train = engine.train_lora

    def counted_train(*a, **k):
        trainings.append(1)
        return real_train(*a, **k)

    engine.train_lora = counted_train
    with tempfile.TemporaryDirectory(prefix="bench-more-") as tmp:
        settings = load_settings({
            "HEADSHOT_DATA_DIR": tmp, "HEADSHOT_BASE_MODEL": args.model, "HEADSHOT_DEVICE": args.device,
            "HEADSHOT_TRAIN_STEPS": str(args.train_steps),
            "HEADSHOT_LIKENESS_THRESHOLD": "0",  # random weights draw no face: keep every image, so both seal alike
        })
        studio = Studio(settings)
        try:
            base = studio.base_model()  # loaded once, outside the timings
            session_id = studio.start_session()
            studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
            owner_key = studio.issue_return_key(session_id).owner_key
            assert studio.upload(session_id, [(FACES / name).read_bytes() for name in PHOTOS]).acceptable
            full, train, more, more_trainings, made = [], [], [], 0, 0
            for _ in range(args.repeats):
                stage_at: dict[str, float] = {}

                def mark(p) -> None:
                    stage_at.setdefault(p.stage, time.perf_counter())

                start = time.perf_counter()
                run = studio.make_headshots(session_id, styles, args.count, owner_key=owner_key, progress=mark)
                full.append(time.perf_counter() - start)
                train.append(stage_at["generating"] - stage_at["training"])
                before = len(trainings)
                start = time.perf_counter()
                extra = studio.more_like_this(session_id, styles, args.count, owner_key=owner_key)
                more.append(time.perf_counter() - start)
                more_trainings += len(trainings) - before
                made += len(run.all_outputs) + len(extra.all_outputs)
            adapters = studio.vault.blobs(session_id, "adapter")
        finally:
            studio.close()
            engine.train_lora = real_train
    full_s, more_s = min(full), min(more)
    row = {"model": args.model, "family": base.family, "device": str(base.device), "styles": len(styles),
           "count": args.count, "photos": len(PHOTOS), "train_steps": args.train_steps or "recipe",
           "full_s": round(full_s, 2), "train_s": round(min(train), 2), "more_s": round(more_s, 2),
           "more_over_full": round(more_s / full_s, 3), "speedup": round(full_s / more_s, 1),
           "images": made, "adapters_sealed": len(adapters), "more_trainings": more_trainings,
           "ok": more_trainings == 0 and made == 2 * args.repeats * len(styles) * args.count}
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
