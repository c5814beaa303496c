"""Time one 12-megapixel phone photo through the upload path: decode+strip, screen, encode, encrypt+store.

    .venv/bin/python bench/bench_ingest.py [--runs 10] [--store vault|aesgcm]

Calls the same functions the app calls (privacy.intake.ingest.ingest, privacy.intake.screening.screen_photo,
CleanPhoto.to_png_bytes, privacy.store.vault.Vault.seal) on an in-memory JPEG made from a fixture
(obama_1.jpg resized to 3000 px high, edge-extended to 4000x3000, with EXIF and GPS, quality
92), and prints per-stage milliseconds (median and best of N, after one warm-up run that loads
the models) against the 250 ms per-photo target, and the total as a multiple of decode+strip
in the same run (issue 13 asks for at most 3x): a ratio, so it holds on a busy machine.
The screening stage is broken down into its two model calls (detection with landmarks, the
face descriptor), timed separately on the same photo and not counted in the total. Last, an
upload of four such photos through privacy.intake.screening.screen_uploads, one thread against
the configured number (HEADSHOT_SCREENING_THREADS; 0 = one per core, at most 4).
`--store aesgcm` replaces the vault by AES-256-GCM plus an fsynced file write, for
comparison. Everything lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import ExifTags, Image  # noqa: E402

from faces.face_model import detect_faces, face_embedding  # noqa: E402
from privacy.intake.ingest import IngestLimits, ingest  # noqa: E402
from privacy.intake.screening import ScreeningRules, screen_photo, screen_uploads  # noqa: E402
from settings import load_settings  # noqa: E402

TARGET_MS = 250.0
MAX_RATIO = 3.0  # total / decode+strip of the same file in the same run (issue 13)
FIXTURE = ROOT / "tests" / "fixtures" / "faces" / "obama_1.jpg"


def twelve_megapixel_jpeg() -> bytes:
    portrait = Image.open(FIXTURE).convert("RGB")
    portrait = portrait.resize((round(portrait.width * 3000 / portrait.height), 3000), Image.Resampling.LANCZOS)
    side = (4000 - portrait.width) // 2
    canvas = cv2.copyMakeBorder(np.asarray(portrait), 0, 0, side, 4000 - portrait.width - side, cv2.BORDER_REPLICATE)
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "BenchCam", "12MP"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 51.0, 24.0)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def vault_store(data_dir: Path, settings) -> Callable[[bytes], object]:
    """The real vault: a session with consent, then `seal` (AES-256-GCM, fsynced blob, index row)."""
    from privacy.lifecycle.consent import Attestations, record_consent
    from privacy.store.database import Database
    from privacy.store.vault import Vault

    db = Database(f"sqlite:///{data_dir / 'bench.db'}")
    vault = Vault(db, data_dir / "vault", secrets.token_bytes(32))
    session_id = vault.new_session()
    record_consent(db, session_id, Attestations(own_photos=True, adult=True, purpose=True), "bench", time.time())
    return lambda png: vault.seal(session_id, "photo", png)


def aesgcm_store(data_dir: Path, settings) -> Callable[[bytes], object]:
    """Stand-in for the vault: AES-256-GCM under a fresh key plus an fsynced file write."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = AESGCM(AESGCM.generate_key(bit_length=256))

    def store(png: bytes) -> None:
        nonce = secrets.token_bytes(12)
        fd = os.open(data_dir / secrets.token_hex(8), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(nonce + cipher.encrypt(nonce, png, None))
            f.flush()
            os.fsync(f.fileno())
    return store


STORES = {"vault": vault_store, "aesgcm": aesgcm_store}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--store", choices=sorted(STORES), default="vault")
    args = parser.parse_args()

    settings = load_settings()
    limits, rules = IngestLimits.from_settings(settings), ScreeningRules.from_settings(settings)
    data = twelve_megapixel_jpeg()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        store = STORES[args.store](Path(tmp), dataclasses.replace(settings, data_dir=Path(tmp)))
        stages: dict[str, list[float]] = {"decode+strip": [], "screen": [], "png encode": [], "encrypt+store": []}
        parts: dict[str, list[float]] = {"detect+landmarks": [], "descriptor": []}
        for run in range(args.runs + 1):  # run 0 loads the models and is not counted
            t0 = time.perf_counter()
            photo = ingest(data, limits)
            t1 = time.perf_counter()
            screened = screen_photo(photo, rules)
            t2 = time.perf_counter()
            png = photo.to_png_bytes(rules.threads)
            t3 = time.perf_counter()
            store(png)
            t4 = time.perf_counter()
            detect_faces(photo.pixels, threshold=rules.face_detection_threshold)
            t5 = time.perf_counter()
            face_embedding(photo.pixels, screened.face)
            t6 = time.perf_counter()
            if run:
                for name, (a, b) in zip(stages, [(t0, t1), (t1, t2), (t2, t3), (t3, t4)]):
                    stages[name].append((b - a) * 1000)
                parts["detect+landmarks"].append((t5 - t4) * 1000)
                parts["descriptor"].append((t6 - t5) * 1000)
    totals = [sum(values) for values in zip(*stages.values())]
    ratios = [total / decode for total, decode in zip(totals, stages["decode+strip"])]
    print(f"12 MP JPEG ({len(data) / 1e6:.1f} MB, 4000x3000) -> {photo.width}x{photo.height} stored, "
          f"PNG {len(png) / 1e6:.2f} MB; store={args.store}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}; "
          f"{args.runs} runs")
    for name, values in stages.items():
        print(f"  {name:<18} median {statistics.median(values):7.1f} ms   best {min(values):7.1f} ms")
        if name == "screen":
            for part, part_values in parts.items():
                print(f"    {part:<16} median {statistics.median(part_values):7.1f} ms   "
                      f"best {min(part_values):7.1f} ms")
    median = statistics.median(totals)
    print(f"  {'total':<18} median {median:7.1f} ms   best {min(totals):7.1f} ms   "
          f"target {TARGET_MS:.0f} ms: {median / TARGET_MS:.2f}x of target (median)")
    print(f"  total / decode+strip: median {statistics.median(ratios):.2f}x  (min {min(ratios):.2f}x, "
          f"max {max(ratios):.2f}x; issue 13 asks for at most {MAX_RATIO:g}x)")
    upload = [data] * 4
    for threads in sorted({1, rules.threads}):
        wall = []
        for _ in range(max(1, args.runs // 3)):
            t0 = time.perf_counter()
            screen_uploads(upload, limits, dataclasses.replace(rules, threads=threads))
            wall.append((time.perf_counter() - t0) * 1000)
        print(f"  upload of 4 (decode+screen), {threads} thread(s): median {statistics.median(wall):7.1f} ms   "
              f"best {min(wall):7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
