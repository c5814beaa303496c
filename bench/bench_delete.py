"""Benchmark delete-now: a full session (20 photos, an adapter, 16 headshots) erased, receipt signed; target ≤ 100 ms.

    python bench/bench_delete.py [--repeats 7] [--adapter-mb 30] [--photo-mb 1.5]

Each repeat builds a fresh session in a temporary data root through the vault (so the
files are real ciphertext on disk), then times `erase_now` alone — the call the
"Delete everything now" button makes — and runs the residue audit to confirm it left nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privacy.lifecycle import retention  # noqa: E402
from privacy.lifecycle.consent import Attestations, record_consent  # noqa: E402
from privacy.lifecycle.erasure import ErasureContext, erase_now  # noqa: E402
from privacy.lifecycle.residue import audit_residue  # noqa: E402
from privacy.records.notice import policy_version  # noqa: E402
from privacy.records.receipts import load_receipt_signer  # noqa: E402
from privacy.store.database import Database  # noqa: E402
from privacy.store.vault import Vault  # noqa: E402
from settings import load_settings  # noqa: E402

TARGET_MS = 100.0
PHOTOS, HEADSHOTS = 20, 16


def build_session(vault: Vault, db: Database, settings, photo_bytes: int, adapter_bytes: int) -> str:
    session_id = vault.new_session()
    now = time.time()
    record_consent(db, session_id, Attestations(True, True, True), policy_version(settings), now)
    retention.on_consent(db, session_id, now, retention.RetentionPolicy.from_settings(settings))
    for _ in range(PHOTOS):
        vault.seal(session_id, "photo", os.urandom(photo_bytes))
        vault.seal(session_id, "embedding", os.urandom(128 * 8))
    vault.seal(session_id, "adapter", os.urandom(adapter_bytes))
    for _ in range(HEADSHOTS):
        vault.seal(session_id, "headshot", os.urandom(400_000))
    vault.seal(session_id, "report", b"[]")
    return session_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--adapter-mb", type=float, default=30.0)
    parser.add_argument("--photo-mb", type=float, default=1.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-delete-") as tmp:
        settings = load_settings({"HEADSHOT_DATA_DIR": tmp})
        db = Database(settings.database)
        vault = Vault(db, settings.blob_dir, os.urandom(32))
        ctx = ErasureContext(db=db, vault=vault, signer=load_receipt_signer(settings), settings=settings)
        timings, total_bytes = [], 0
        for _ in range(args.repeats):
            session_id = build_session(vault, db, settings, int(args.photo_mb * 2**20), int(args.adapter_mb * 2**20))
            total_bytes = sum(ref.size for ref in vault.blobs(session_id))
            start = time.perf_counter()
            receipt = erase_now(ctx, session_id)
            timings.append((time.perf_counter() - start) * 1000)
            assert sum(e["count"] for kinds in receipt.payload["categories"].values() for e in kinds.values()) \
                == 2 * PHOTOS + 1 + HEADSHOTS + 1
        report = audit_residue(settings, db, vault, time.time())
        db.dispose()
    median = statistics.median(timings)
    print(f"delete-now: {PHOTOS} photos + embeddings, {args.adapter_mb:g} MB adapter, {HEADSHOTS} headshots "
          f"({total_bytes / 2**20:.1f} MB ciphertext, {2 * PHOTOS + HEADSHOTS + 2} files)")
    print(f"  runs (ms): {', '.join(f'{t:.1f}' for t in timings)}")
    print(f"  median {median:.1f} ms (min {min(timings):.1f}); target {TARGET_MS:.0f} ms; "
          f"ratio {median / TARGET_MS:.2f}x of target")
    print(f"  residue audit after all runs: {'clean' if report.clean else report.summary()}")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
