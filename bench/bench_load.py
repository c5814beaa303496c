"""Full-size load run: N concurrent sessions through a real server (tiny model, loopback only).

    python bench/bench_load.py [--sessions 20] [--no-flood]

Starts `python app.py` (via tests/hardening/instrumented_app.py, nothing armed) on a free
port with a temporary data root, behind a stand-in proxy on 127.0.0.1 (each visitor has its
own X-Forwarded-For), drives N visits at once with gradio_client — consent, upload, generate,
download, delete — while a stranger at another address floods the queue without consent, and
prints sessions/minute, errors, p95 of the non-GPU steps, peak server RSS, cross-session
fetches served (must be 0), the most generations running at once (must be 1) and how many
of the flood's requests were refused.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hardening.load import run_load  # noqa: E402
from tests.hardening.server import StudioServer  # noqa: E402
from tests.hardening.test_load import own_copies  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--no-flood", action="store_true", help="no flooding client")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        server = StudioServer(data_dir=root / "data", log=root / "server.log", temp_dir=root / "tmp",
                              settings={"queue_size": str(max(8, args.sessions)), "trusted_proxies": "127.0.0.1"})
        server.start()
        try:
            (root / "photos").mkdir()
            sets = own_copies(ROOT / "tests" / "fixtures" / "faces", root / "photos", args.sessions)
            report = run_load(server.url, server.proc.pid, server.data_dir, sets, flood=not args.no_flood)
        finally:
            server.stop()
    print(report.summary())
    for error in report.errors:
        print("  error:", error)
    ok = not report.errors and report.cross_session_fetches_served == 0 and report.max_concurrent_generations <= 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
