"""A studio process for test_scheduler, on the real start path (`start_scheduler`):

    python tests/privacy/crash_session.py hold|restart|serve DATA_DIR [OFFSET] [DATABASE_URL]

`hold` opens a session, seals data, then waits to be SIGKILLed; `restart` starts again (clock
shifted by OFFSET seconds) and lets the start-up sweep run; `serve` is an app worker: it prints
whether it got the scheduler and, if not, stands by (retrying every 0.2 s) and prints again once
it has taken over (or after 30 s without). DATABASE_URL empty: SQLite in DATA_DIR.

Prints one JSON line per state: whether this process runs the scheduler, and what its start-up sweep erased.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from privacy.lifecycle import scheduler  # noqa: E402
from tests.privacy.helpers import FakeClock, consented_session, make_env  # noqa: E402

STANDBY_RETRY_SECONDS = 0.2
TAKEOVER_WAIT_SECONDS = 30


def main() -> None:
    mode, data_dir = sys.argv[1], Path(sys.argv[2])
    offset = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    database_url = sys.argv[4] if len(sys.argv) > 4 else ""
    env = make_env(data_dir, FakeClock(time.time() + offset), database_url=database_url)
    started = scheduler.start_scheduler(env.ctx, retry_seconds=STANDBY_RETRY_SECONDS)
    sweep = started.startup_sweep
    out = {"scheduler": started.running, "reason": started.reason,
           "sessions_erased": sweep.sessions_erased if sweep else None}
    if mode == "hold":
        consented_session(env, photos=3)
        out["blobs"] = len(list(env.settings.blob_dir.iterdir()))
        print(json.dumps(out), flush=True)
        time.sleep(600)  # killed long before this ends
    elif mode == "serve":
        print(json.dumps(out), flush=True)
        deadline = time.monotonic() + (600 if started.running else TAKEOVER_WAIT_SECONDS)
        while not scheduler.scheduled_jobs() and time.monotonic() < deadline:
            time.sleep(0.05)
        print(json.dumps({"scheduler": bool(scheduler.scheduled_jobs()), "took_over": not started.running}),
              flush=True)
        time.sleep(600)  # a serving worker: ended by the test
    else:
        print(json.dumps(out), flush=True)
        scheduler.stop_scheduler()
        env.close()


if __name__ == "__main__":
    main()
