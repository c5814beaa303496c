"""Long fuzz run of the parsers strangers' bytes reach (ingest, receipt verify, provenance verify).

    python bench/bench_fuzz.py [--examples N]     (default 5000 per target)

The same properties as tests/hardening/test_fuzz.py, for many more examples. Prints the
executions and failures per target; exit status 1 if any property failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)  # Pillow warns on every damaged EXIF it meets
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.hardening import test_fuzz  # noqa: E402
from tests.hardening.fuzz_targets import check_ingest, check_receipt, mutated, receipt_mutations  # noqa: E402


def run(name: str, strategy, body, examples: int) -> tuple[int, int]:
    count = [0]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(data=strategy)
    def target(data):
        count[0] += 1
        body(data)

    started = time.perf_counter()
    failures = 0
    try:
        target()
    except Exception as exc:  # hypothesis re-raises the minimal failing example
        failures = 1
        print(f"  FAILED: {type(exc).__name__}: {str(exc)[:300]}")
    print(f"{name:28s} executions {count[0]:6d}  failures {failures}  {time.perf_counter() - started:6.1f} s")
    return count[0], failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    from privacy.marks.provenance import Provenance
    from settings import load_settings

    seeds, genuine, public = test_fuzz.SEEDS, test_fuzz.GENUINE, test_fuzz.PUBLIC
    with tempfile.TemporaryDirectory() as tmp:
        provenance = Provenance.from_settings(load_settings({"HEADSHOT_DATA_DIR": tmp}))

        def verify(data):
            assert not provenance.verify_image(data).is_ours

        results = [
            run("ingest (mutated images)", mutated(seeds), check_ingest, args.examples),
            run("ingest (random bytes)", st.binary(max_size=1024), check_ingest, args.examples),
            run("receipt (edited receipts)", receipt_mutations(genuine),
                lambda d: check_receipt(d, public, genuine), args.examples),
            run("receipt (random bytes)", st.binary(max_size=2048),
                lambda d: check_receipt(d, public, genuine), args.examples),
            run("provenance verify", st.one_of(mutated(seeds), st.binary(max_size=512)), verify,
                max(1, args.examples // 5)),
        ]
    total, failed = sum(r[0] for r in results), sum(r[1] for r in results)
    print(f"total executions {total}, failed properties {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
