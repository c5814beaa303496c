"""Queue mode's throughput: jobs per minute with 1 and 2 `cli.py worker` processes, in the same run, and the queue's
own cost per job (enqueue → start on an idle worker), on Redis and PostgreSQL, tiny model, CPU, one thread each.

    python bench/bench_workers.py [--jobs 6] [--steps 10] [--probes 5]

Starts a throwaway Redis and PostgreSQL as the tests do (tests/redis_server.py, tests/postgres.py: Debian's
packages, installed with apt when run as root), one shared data directory, and the web side in this process
(`studio.workers.queued_line`, as app.py wires it). Each round starts its workers, waits until they consume,
submits `--jobs` sessions' jobs at once and times the first submission to the last end; then the workers stop.
The overhead is measured first, on one idle worker: `--probes` jobs one after another, each from its row's
creation (the enqueue) to the worker's claim (the start); both times come from this machine's clock.
On a machine with fewer free cores than workers the 2-worker figure measures the CPU share, not the queue.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["OMP_NUM_THREADS"] = "1"

from privacy.lifecycle.consent import Attestations  # noqa: E402
from settings import load_settings  # noqa: E402
from studio.job_tables import JobClaimRow, JobRow  # noqa: E402
from studio.jobs import GpuLine, JobRecords  # noqa: E402
from studio.service import Studio  # noqa: E402
from studio.workers import queued_line  # noqa: E402
from tests.postgres import PostgresServer, find_or_install_postgres  # noqa: E402
from tests.redis_server import RedisServer, find_or_install_redis  # noqa: E402

PHOTO = ROOT / "tests" / "fixtures" / "faces" / "obama_1.jpg"


def start_workers(env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(count):
        log = logs / f"worker-{count}-{i}.log"
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "cli.py", "worker", "--name", f"bench-{count}-{i}"],
                                          cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 180
    for i in range(count):
        log = logs / f"worker-{count}-{i}.log"
        while "ready for jobs" not in log.read_text(errors="replace"):
            if procs[i].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


def new_sessions(studio: Studio, count: int) -> list[tuple[str, bytes]]:
    sessions = []
    for _ in range(count):
        session_id = studio.start_session()
        studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
        key = studio.issue_return_key(session_id).owner_key
        assert studio.upload(session_id, [PHOTO.read_bytes()]).acceptable
        sessions.append((session_id, key))
    return sessions


def run_jobs(line, sessions: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    jobs = [line.submit(session_id, ["linkedin_classic"], 1, owner_key=key) for session_id, key in sessions]
    for job in jobs:
        if not job.finished.wait(900) or job.state != "done":
            raise SystemExit(f"a job ended {job.state}")
    return time.perf_counter() - started


def enqueue_to_start_ms(studio: Studio, line, sessions: list[tuple[str, bytes]]) -> list[float]:
    waits = []
    for session_id, key in sessions:
        job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=key)
        job.finished.wait(900)
        with studio.db.session() as s:
            waits.append((s.get(JobClaimRow, job.id).first_started_at - s.get(JobRow, job.id).created_at) * 1e3)
    return waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6, help="jobs per round (default 6)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per job (default 10)")
    parser.add_argument("--probes", type=int, default=5, help="jobs for the enqueue → start overhead (default 5)")
    args = parser.parse_args()

    redis = RedisServer(find_or_install_redis()).start()
    postgres = PostgresServer(find_or_install_postgres()).start()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    env.update({
        "HEADSHOT_DATA_DIR": str(data_dir), "HEADSHOT_DATABASE_URL": postgres.create_database(),
        "HEADSHOT_QUEUE_URL": redis.url, "HEADSHOT_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1",
        "HEADSHOT_TRAIN_STEPS": str(args.steps), "HEADSHOT_LIKENESS_THRESHOLD": "0",
        "HEADSHOT_IMAGES_PER_STYLE": "1", "HEADSHOT_QUEUE_SIZE": "200", "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
    })
    settings = load_settings({k: v for k, v in env.items() if k.startswith("HEADSHOT_")})
    studio = Studio(settings)  # creates the schema and the keys before any worker starts
    line = queued_line(studio, settings, local=GpuLine(lambda job, report: None, capacity=4,
                                                        records=JobRecords(studio.db)), owner_key_of=lambda _: None)
    try:
        print(f"{args.jobs} jobs a round, tiny-sd, {args.steps} training steps, 1 image; CPU, one thread a worker; "
              f"{os.cpu_count()} cores on this machine")
        rates = {}
        for workers in (1, 2):
            procs = start_workers(env, workers, data_dir)
            try:
                if workers == 1:
                    waits = enqueue_to_start_ms(studio, line, new_sessions(studio, args.probes))
                    print(f"enqueue → start on an idle worker: median {statistics.median(waits):.0f} ms, "
                          f"min {min(waits):.0f} ms, max {max(waits):.0f} ms ({len(waits)} jobs)")
                seconds = run_jobs(line, new_sessions(studio, args.jobs))
            finally:
                stop_workers(procs)
            rates[workers] = args.jobs / seconds * 60
            print(f"{workers} worker{'s' if workers > 1 else ''}: {args.jobs} jobs in {seconds:.1f} s = "
                  f"{rates[workers]:.2f} jobs/minute")
        print(f"ratio 2 workers / 1 worker: {rates[2] / rates[1]:.2f}")
    finally:
        line.close()
        studio.close()
        redis.stop()
        postgres.stop()
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
