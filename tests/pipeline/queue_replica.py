"""A web replica for tests/pipeline/test_workers_on_redis.py: the studio and its queued line, wired as app.py wires
them in queue mode, without Gradio (a real app process costs a browser to drive).

    python tests/pipeline/queue_replica.py N PHOTO     N sessions: consent, return key, upload, submit

Prints one JSON line when the N jobs are submitted, then one per job once it ended, as its owner's page sees it
(the owner key is held for each session, as a watching page holds it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from privacy.store.vault import HEADSHOTS  # noqa: E402
from settings import load_settings  # noqa: E402
from studio.jobs import GpuLine, JobRecords  # noqa: E402
from studio.service import Studio  # noqa: E402
from studio.workers import queued_line  # noqa: E402
from tests.pipeline.helpers import session_with_photos  # noqa: E402

WAIT_SECONDS = 240


def main(count: int, photo: Path) -> int:
    settings = load_settings()
    studio = Studio(settings)
    keys: dict[str, bytes] = {}  # privacy.store.owner_presence's part: the owners' pages are open
    local = GpuLine(lambda job, report: None, capacity=settings.queue_size, records=JobRecords(studio.db))
    line = queued_line(studio, settings, local=local, owner_key_of=keys.get)
    jobs = []
    for _ in range(count):
        session_id, keys_of = session_with_photos(studio, photo.parent, photo.name)
        keys[session_id] = keys_of
        jobs.append(line.submit(session_id, ["linkedin_classic"], 1, owner_key=keys[session_id]))
    print(json.dumps({"submitted": [job.id for job in jobs]}), flush=True)
    deadline = time.monotonic() + WAIT_SECONDS
    for job in jobs:
        job.finished.wait(max(0.0, deadline - time.monotonic()))
        time.sleep(2 * line.poll_seconds)  # the hand-over follows the end
        print(json.dumps({"job": job.id, "state": job.state,
                          "headshots": len(studio.headshots(job.session_id, keys[job.session_id])),
                          "owner_held": studio.vault.held_by_owner(job.session_id, HEADSHOTS)}), flush=True)
    line.close()
    studio.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), Path(sys.argv[2])))
