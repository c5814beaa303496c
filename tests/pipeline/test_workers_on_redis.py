"""Queue mode for real: Redis (Debian's `redis-server`, tests/redis_server.py), PostgreSQL (tests/postgres.py), two
web replicas and two `python cli.py worker` processes on one shared database and one shared data directory, the
tiny model on CPU, one thread each.

The web replicas are tests/pipeline/queue_replica.py processes: the studio and the queued line wired as app.py
wires them in queue mode, without Gradio, which makes the queue's semantics quick to drive from a test; two real
`python app.py` replicas, driven over Gradio's protocol, are tests/app/test_two_apps_two_workers.py. The
workers are the real command. The tests run in order, on one set of processes: the kill test leaves one worker.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from settings import load_settings
from studio.job_tables import JobClaimRow, JobRow
from studio.jobs import DONE, QUEUED, RUNNING
from studio.service import Studio
from studio.workers import queued_line
from tests.pipeline.helpers import session_with_photos

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("gpu-a", "gpu-b")
STARTED = re.compile(r"job (\w+) started on (\S+) \(attempt (\d+)\)")
ENDED = re.compile(r"job (\w+) ended on (\S+): (\w+)")


class Cluster:
    def __init__(self, env: dict[str, str], data_dir: Path, logs: Path) -> None:
        self.env, self.data_dir, self.logs = env, data_dir, logs
        self.workers: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.settings = load_settings({k: v for k, v in env.items() if k.startswith("HEADSHOT_")})
        self.studio = Studio(self.settings)  # first: creates the schema and the deployment's keys, once

    def start_worker(self, name: str) -> None:
        from tests.postgres import _free_port
        self.ports[name] = _free_port()
        env = {**self.env, "HEADSHOT_WORKER_PORT": str(self.ports[name])}
        with open(self.logs / f"{name}.log", "wb") as out:
            self.workers[name] = subprocess.Popen([sys.executable, "cli.py", "worker", "--name", name], cwd=ROOT,
                                                  env=env, stdout=out, stderr=subprocess.STDOUT)

    def health(self, name: str, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports[name]}{path}", timeout=5)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def events(self, pattern: re.Pattern) -> list[tuple[str, ...]]:
        return [m.groups() for name in WORKERS for m in pattern.finditer(self.log(name))]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for name in self.workers:
            while "ready for jobs" not in self.log(name):
                assert self.workers[name].poll() is None, self.log(name)[-3000:]
                assert time.monotonic() < deadline, f"worker {name} did not start:\n{self.log(name)[-3000:]}"
                time.sleep(0.2)
            assert self.health(name, "/readyz").status_code == 200  # what an orchestrator's probe asks

    def row(self, job_id: str) -> tuple[str | None, JobClaimRow | None]:
        with self.studio.db.session() as s:
            row, claim = s.get(JobRow, job_id), s.get(JobClaimRow, job_id)
            if claim is not None:
                s.expunge(claim)
            return (row.state if row is not None else None), claim

    def stop(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.studio.close()


@pytest.fixture(scope="module")
def cluster(postgres_server, redis_server, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("shared-data")
    logs = tmp_path_factory.mktemp("worker-logs")
    database_url = postgres_server.create_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    env.update({
        "HEADSHOT_DATA_DIR": str(data_dir),  # the shared blob directory (a mounted volume in production)
        "HEADSHOT_DATABASE_URL": database_url,
        "HEADSHOT_QUEUE_URL": redis_server.url,
        "HEADSHOT_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),  # every process's own copy
        "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1",
        "HEADSHOT_TRAIN_STEPS": "30", "HEADSHOT_LIKENESS_THRESHOLD": "0", "HEADSHOT_IMAGES_PER_STYLE": "1",
        "HEADSHOT_WORKER_STALE_SECONDS": "3", "HEADSHOT_JOB_VISIBILITY_SECONDS": "600",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
    })
    cluster = Cluster(env, data_dir, logs)
    for name in WORKERS:
        cluster.start_worker(name)
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()
        postgres_server.drop_database(database_url)


def replica(cluster: Cluster, count: int, faces_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "tests/pipeline/queue_replica.py", str(count),
                             str(faces_dir / "obama_1.jpg")], cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_six_sessions_through_two_replicas_finish_on_both_workers_each_exactly_once(cluster, faces_dir):
    started = time.monotonic()
    replicas = [replica(cluster, 3, faces_dir) for _ in range(2)]
    results = []
    for proc in replicas:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results += [json.loads(line) for line in out.splitlines() if line.startswith('{"job"')]
    assert len(results) == 6
    # Done, one headshot each (sealed once), handed to its owner, whose page was present.
    assert [(r["state"], r["headshots"], r["owner_held"]) for r in results] == [(DONE, 1, True)] * 6
    runs = cluster.events(STARTED)
    ends = cluster.events(ENDED)
    job_ids = sorted(r["job"] for r in results)
    assert sorted(job for job, _, _ in runs) == job_ids  # each started exactly once
    assert sorted(job for job, _, state in ends if state == DONE) == job_ids
    assert {worker for _, worker, _ in runs} == set(WORKERS)  # on both workers
    metrics = {name: cluster.health(name, "/metrics").text for name in WORKERS}
    done = sum(int(float(re.search(r'headshot_job_duration_seconds_count\{outcome="done"\} (\S+)', text).group(1)))
               for text in metrics.values())
    assert done == 6 and all("headshot_queue_depth 0.0" in text for text in metrics.values())
    print(f"\n6 jobs, 2 replicas, 2 workers: {time.monotonic() - started:.1f} s, "
          f"per worker: {[sum(w == name for _, w, _ in runs) for name in WORKERS]}")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_worker_killed_during_training_leaves_its_job_to_the_other_worker_never_both(cluster, faces_dir):
    keys: dict[str, bytes] = {}
    line = queued_line(cluster.studio, cluster.settings, local=_no_local(cluster), owner_key_of=keys.get)
    try:
        session_id, keys_of = session_with_photos(cluster.studio, faces_dir)
        job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=keys_of)
        _wait(lambda: cluster.row(job.id)[0] == RUNNING and (cluster.row(job.id)[1].fraction or 0) > 0.05, 60,
              "training to start")
        victim = cluster.row(job.id)[1].worker
        cluster.workers[victim].send_signal(signal.SIGKILL)
        cluster.workers[victim].wait(10)
        killed_at = time.monotonic()
        survivor = next(name for name in WORKERS if name != victim)
        assert job.finished.wait(120)
        state, claim = cluster.row(job.id)
        assert state == DONE and claim.worker == survivor and claim.attempts == 2
        assert len(cluster.studio.vault.blobs(session_id, "headshot")) == 1  # sealed once
        assert len(cluster.studio.vault.blobs(session_id, "report")) == 1
        ends = [(j, w) for j, w, s in cluster.events(ENDED) if j == job.id]
        assert ends == [(job.id, survivor)]  # the killed attempt never ended: only one run counts
        print(f"\nkilled {victim} during training; {survivor} finished the job "
              f"{time.monotonic() - killed_at:.1f} s later")
    finally:
        line.close()


def test_a_queued_job_whose_session_is_erased_never_runs(cluster, faces_dir):
    line = queued_line(cluster.studio, cluster.settings, local=_no_local(cluster), owner_key_of=lambda _: None)
    cluster.studio.erasure.hooks.append(line.cancel_session)
    try:
        busy, busy_key = session_with_photos(cluster.studio, faces_dir)
        erased, erased_key = session_with_photos(cluster.studio, faces_dir)
        first = line.submit(busy, ["linkedin_classic"], 1, owner_key=busy_key)  # one worker is left: it waits
        second = line.submit(erased, ["linkedin_classic"], 1, owner_key=erased_key)
        _wait(lambda: cluster.row(first.id)[0] == RUNNING, 60, "the first job to start")
        assert cluster.row(second.id)[0] == QUEUED and line.place_in_line(second) == (1, 1)
        cluster.studio.delete_now(erased)
        assert first.finished.wait(120) and first.state == DONE
        _wait(lambda: any(f"job {second.id} skipped" in cluster.log(n) for n in WORKERS), 30,
              "the erased job's message to be dropped")
        assert second.id not in {job for job, _, _ in cluster.events(STARTED)}
        assert cluster.row(second.id) == (None, None)  # its row went with the session
    finally:
        line.close()


def test_a_queued_job_whose_message_redis_lost_still_runs_once_within_seconds(cluster, faces_dir, redis_server):
    import redis

    from studio.workers import broker_job_ids, celery_app
    line = queued_line(cluster.studio, cluster.settings, local=_no_local(cluster), owner_key_of=lambda _: None)
    broker = celery_app(cluster.settings.queue_url, visibility_seconds=600)
    try:
        busy, busy_key = session_with_photos(cluster.studio, faces_dir)
        waiting, waiting_key = session_with_photos(cluster.studio, faces_dir)
        first = line.submit(busy, ["linkedin_classic"], 1, owner_key=busy_key)  # one worker is left: it waits
        _wait(lambda: cluster.row(first.id)[0] == RUNNING, 60, "the first job to start")
        second = line.submit(waiting, ["linkedin_classic"], 1, owner_key=waiting_key)
        assert second.id in broker_job_ids(broker)
        redis.Redis.from_url(redis_server.url).flushdb()  # Redis restarted without persistence: messages gone
        lost_at = time.monotonic()
        assert second.id not in broker_job_ids(broker) and cluster.row(second.id)[0] == QUEUED
        assert first.finished.wait(120) and first.state == DONE
        first_done = time.monotonic()
        assert second.finished.wait(60) and second.state == DONE  # not after the 10-minute visibility timeout
        print(f"\nmessage lost {first_done - lost_at:.1f} s before the worker was free; the job ended "
              f"{time.monotonic() - first_done:.1f} s after it was")
        assert [job for job, _, _ in cluster.events(STARTED)].count(second.id) == 1  # ran once
        assert len(cluster.studio.vault.blobs(waiting, "headshot")) == 1
        assert any(f"job {second.id}: its message was lost" in cluster.log(name) for name in WORKERS)
    finally:
        line.close()


def test_the_residue_audit_is_clean_on_the_shared_storage_at_the_end(cluster):
    audit = subprocess.run([sys.executable, "cli.py", "audit"], cwd=ROOT, env=cluster.env, capture_output=True,
                           text=True, timeout=120)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]


def _no_local(cluster: Cluster):
    from studio.jobs import GpuLine, JobRecords
    return GpuLine(lambda job, report: None, capacity=4, records=JobRecords(cluster.studio.db))
