"""A studio process for test_scheduler: `hold` opens a session, seals data, then waits to be SIGKILLed;
`restart` starts again (clock shifted by OFFSET seconds) and lets the start-up sweep run.

    python tests/privacy/crash_session.py hold|restart DATA_DIR [OFFSET]

Prints one JSON line: whether this process got the scheduler, and what its start-up sweep erased.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from privacy import scheduler  # noqa: E402
from tests.privacy.helpers import FakeClock, consented_session, make_env  # noqa: E402


def main() -> None:
    mode, data_dir = sys.argv[1], Path(sys.argv[2])
    offset = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    env = make_env(data_dir, FakeClock(time.time() + offset))
    started = scheduler.start_scheduler(env.ctx)
    sweep = started.startup_sweep
    out = {"scheduler": started.running, "reason": started.reason,
           "sessions_erased": sweep.sessions_erased if sweep else None}
    if mode == "hold":
        consented_session(env, photos=3)
        out["blobs"] = len(list(env.settings.blob_dir.iterdir()))
        print(json.dumps(out), flush=True)
        time.sleep(600)  # killed long before this ends
    else:
        print(json.dumps(out), flush=True)
        scheduler.stop_scheduler()
        env.close()


if __name__ == "__main__":
    main()
