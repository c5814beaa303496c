"""Benchmark presenting a return key: a wrong key and the right key of an erased session must cost the same.

    python bench/bench_return_keys.py [--sessions 400] [--samples 4000]

Times what `web.handlers.StudioHandlers.attach` does with a presented code before it answers
(parse the code, look up its locator) for three kinds of code, interleaved in one run:
well-formed random keys (what a guesser sends), mistyped codes (check characters wrong) and the
right keys of erased sessions. Prints the medians, the 90th percentiles and the ratios against
the wrong keys measured in the same run; a ratio near 1.00 means no timing signal to learn from.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privacy.lifecycle.consent import Attestations  # noqa: E402
from privacy.store.return_keys import ReturnKey, parse_return_key  # noqa: E402
from settings import load_settings  # noqa: E402
from studio.service import Studio  # noqa: E402


def present(studio: Studio, code: str) -> bool:
    """The attach path up to its answer: True if the code led to an erased session."""
    key = parse_return_key(code)
    found = studio.find_session(key or ReturnKey.new())
    return key is not None and found.erased_at is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--samples", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        studio = Studio(load_settings({"HEADSHOT_DATA_DIR": tmp, "HEADSHOT_BASE_MODEL": "tiny-sd"}))
        erased = []
        for _ in range(args.sessions):  # a database with live and erased keys, as a studio in use has
            session_id = studio.start_session()
            studio.give_consent(session_id, Attestations(True, True, True))
            code = studio.issue_return_key(session_id).code
            if len(erased) < args.sessions // 2:
                studio.delete_now(session_id)
                erased.append(code)
        kinds = {
            "wrong key": lambda: ReturnKey.new().code,
            "mistyped": lambda: ReturnKey.new().code[:-1] + "0",
            "erased key": lambda: random.choice(erased),
        }
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.samples):
            for kind in random.sample(list(kinds), len(kinds)):  # interleaved, in random order
                code = kinds[kind]()
                start = time.perf_counter()
                led_to_erased = present(studio, code)
                times[kind].append(time.perf_counter() - start)
                assert led_to_erased == (kind == "erased key")
        studio.close()
    reference = statistics.median(times["wrong key"])
    print(f"{'code presented':<14} {'median µs':>10} {'p90 µs':>8} {'vs wrong':>9}")
    for kind, samples in times.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{kind:<14} {median * 1e6:>10.1f} {p90 * 1e6:>8.1f} {median / reference:>8.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
