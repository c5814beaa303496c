"""The scheduler: one per deployment, a start-up sweep after a crash (promise 20), jobs that never overlap."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from privacy.lifecycle import scheduler
from privacy.store.database import ErasureRow, SessionRow
from tests.privacy.helpers import HOUR, FakeClock, consented_session, generate, make_env

SCRIPT = Path(__file__).with_name("crash_session.py")

pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def env(tmp_path, database_url):
    env = make_env(tmp_path / "data", database_url=database_url)
    yield env
    scheduler.stop_scheduler()
    env.close()


def test_start_up_sweep_erases_what_expired_while_down(env):
    expired = consented_session(env)
    env.clock.advance(25 * HOUR)
    alive = consented_session(env)
    started = scheduler.start_scheduler(env.ctx, background=False)
    assert started.running and started.startup_sweep.sessions_erased == 1
    assert env.vault.blobs(expired) == [] and env.vault.blobs(alive) != []


def test_every_sweep_removes_blobs_a_raced_seal_left_without_index_or_key(env):
    import os
    alive = consented_session(env)
    assert scheduler.start_scheduler(env.ctx, background=False)
    orphan = env.vault.blob_dir / "0123456789abcdef0123456789abcdef"
    orphan.write_bytes(b"HSV1" + os.urandom(64))  # a file whose row never committed
    old = time.time() - 2 * scheduler.ORPHAN_GRACE_SECONDS
    os.utime(orphan, (old, old))
    in_flight = env.vault.blob_dir / "fedcba9876543210fedcba9876543210"
    in_flight.write_bytes(b"HSV1" + os.urandom(64))  # just written: its row may be committing now
    scheduler.run_sweep()
    assert not orphan.exists() and in_flight.exists()
    assert env.vault.blobs(alive) != []


def test_a_second_scheduler_in_the_same_process_does_not_start(env):
    assert scheduler.start_scheduler(env.ctx, background=False)
    second = scheduler.start_scheduler(env.ctx, background=False)
    assert not second.running and second.startup_sweep is None


def test_jobs_live_in_the_database_under_fixed_ids_without_session_ids(tmp_path, database_url):
    # The real scheduler fires on real time, so this clock starts at the real now.
    env = make_env(tmp_path / "data", FakeClock(time.time()), database_url=database_url)
    try:
        session_id = consented_session(env)
        generate(env, session_id)  # identity due in 1 h: beyond the look-ahead of two 5-minute sweeps
        env.clock.advance(HOUR - 60)  # now due in one minute: within it
        assert scheduler.start_scheduler(env.ctx)
        scheduler.stop_scheduler()
        assert scheduler.start_scheduler(env.ctx)  # restart: replace_existing, no duplicates
        audit_id = env.vault.audit_id(session_id)
        with env.db.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT id, job_state FROM {scheduler.JOB_TABLE} ORDER BY id")).all()
        assert [r.id for r in rows] == [f"expire-{audit_id}-identity", scheduler.SWEEP_JOB_ID]
        assert all(session_id.encode() not in r.job_state for r in rows)
        jobs = dict(scheduler.scheduled_jobs())
        assert jobs[f"expire-{audit_id}-identity"].timestamp() == pytest.approx(env.clock() + 60)
    finally:
        scheduler.stop_scheduler()
        env.close()


def test_a_sweep_never_runs_twice_at_once(env):
    assert scheduler.start_scheduler(env.ctx, background=False)
    sessions = [consented_session(env) for _ in range(2)]
    env.clock.advance(25 * HOUR)
    entered, release = threading.Event(), threading.Event()
    active, most = [0], [0]

    def slow_hook(session_id):
        active[0] += 1
        most[0] = max(most[0], active[0])
        entered.set()
        release.wait(5)
        active[0] -= 1

    env.ctx.hooks.append(slow_hook)
    first = threading.Thread(target=scheduler.run_sweep)
    first.start()
    assert entered.wait(5)
    assert scheduler.run_sweep() is None  # a job firing meanwhile does not run beside it...
    release.set()
    first.join(10)
    assert most[0] == 1
    assert all(env.vault.blobs(s) == [] for s in sessions)  # ...and the running one finished the work


def run_script(mode, data_dir, database_url, offset=0.0):
    return subprocess.Popen([sys.executable, str(SCRIPT), mode, str(data_dir), str(offset), database_url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_sigkilled_process_is_swept_at_restart_and_never_two_schedulers_run(tmp_path, database_url):
    data_dir = tmp_path / "data"
    holder = run_script("hold", data_dir, database_url)
    try:
        first = json.loads(holder.stdout.readline())
        assert first["scheduler"] and first["blobs"] == 7  # 3 photos, 3 embeddings, an adapter

        rival = run_script("restart", data_dir, database_url)  # a second worker while the first is alive
        out, err = rival.communicate(timeout=60)
        second = json.loads(out)
        assert not second["scheduler"] and "another process" in second["reason"]
        assert second["sessions_erased"] is None  # it ran no sweep either

        holder.send_signal(signal.SIGKILL)  # crash mid-session: no clean shutdown, no finally blocks
        holder.wait(10)
    finally:
        holder.kill()
        holder.stdout.close()
        holder.stderr.close()
    assert len(list((data_dir / "vault").iterdir())) == 7  # the crash erased nothing

    restarted = run_script("restart", data_dir, database_url, offset=24 * HOUR + 60)  # back after the hard cap
    out, err = restarted.communicate(timeout=60)
    third = json.loads(out)
    assert third["scheduler"] and third["sessions_erased"] == 1, err
    assert list((data_dir / "vault").iterdir()) == []
    env = make_env(data_dir, database_url=database_url)
    with env.db.session() as s:
        assert s.scalars(select(SessionRow)).all() == []
        assert [r.by for r in s.scalars(select(ErasureRow))] == ["schedule"]
    env.close()


def test_two_app_processes_on_one_database_run_one_scheduler_and_the_survivor_takes_over(tmp_path, database_url):
    data_dir = tmp_path / "data"
    # No schema first: both processes open a new database at the same moment, and one migrates it while the
    # other waits (privacy/store/schema_migrations.py: a flock on SQLite, an advisory lock on PostgreSQL).
    workers = [run_script("serve", data_dir, database_url) for _ in range(2)]  # started at the same moment
    try:
        first = [json.loads(w.stdout.readline()) for w in workers]
        assert sorted(f["scheduler"] for f in first) == [False, True]  # exactly one runs it
        holder, standby = workers if first[0]["scheduler"] else workers[::-1]
        [waiting] = [f for f in first if not f["scheduler"]]
        assert "standing by" in waiting["reason"] and waiting["sessions_erased"] is None  # and sweeps nothing
        assert json.loads(holder.stdout.readline()) == {"scheduler": True, "took_over": False}

        holder.send_signal(signal.SIGKILL)  # the holder dies without a word: its lock goes with it
        holder.wait(10)
        assert json.loads(standby.stdout.readline()) == {"scheduler": True, "took_over": True}
    finally:
        for w in workers:
            w.kill()
            w.wait(10)
            w.stdout.close()
            w.stderr.close()
