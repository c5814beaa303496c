"""Queue mode's promises, one process, no broker: the web side (`QueuedLine`) and workers (`JobWorker`) share one
database, and a list stands in for Redis (a message is a job id). tests/pipeline/test_workers_on_redis.py runs the
same code as real processes on Redis and PostgreSQL.
"""

from __future__ import annotations

import threading
import time

import pytest

from privacy.store.vault import HEADSHOTS
from settings import load_settings
from studio.job_claims import JobClaims
from studio.job_tables import JobClaimRow
from studio.jobs import CANCELLED, DONE, INTERRUPTED, QUEUED, GpuLine, Job, JobRecords
from studio.service import Studio
from studio.workers import JobWorker, QueuedLine, run_studio_job
from tests.pipeline.helpers import session_with_photos


class Broker:
    """Stands in for Redis: the messages sent, in order (each only a job id)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, job_id: str) -> None:
        self.messages.append(job_id)


@pytest.fixture
def queue(tmp_path):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2", "HEADSHOT_LIKENESS_THRESHOLD": "0",
        "HEADSHOT_IMAGES_PER_STYLE": "1", "HEADSHOT_QUEUE_URL": "redis://127.0.0.1:1/0",
    })
    studio = Studio(settings)
    broker = Broker()
    keys: dict[str, bytes] = {}  # the owner keys of the pages open now (privacy.store.owner_presence's part)
    local = GpuLine(lambda job, report: None, capacity=4, records=JobRecords(studio.db))
    line = QueuedLine(studio, send=broker.send, local=local, capacity=4, owner_key_of=keys.get, poll_seconds=0.05)
    studio.erasure.hooks.append(line.cancel_session)  # as app.py wires it
    yield studio, line, broker, keys
    line.close()
    studio.close()


def worker_with(studio: Studio, run, broker: Broker, name: str, **kwargs) -> JobWorker:
    return JobWorker(studio, run, enqueue=broker.send, name=name, heartbeat_seconds=0.05, **kwargs)


def test_a_message_carries_only_the_job_id_and_the_row_says_queued(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    assert broker.messages == [job.id]
    assert session_id not in job.id and owner_key.hex() not in job.id
    assert line.job_of(session_id).state == QUEUED
    assert line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key).id == job.id  # one job per session


def test_a_job_is_claimed_by_one_worker_only(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    claims = JobClaims(studio.db)
    assert claims.claim(job.id, "gpu-a") is not None
    assert claims.claim(job.id, "gpu-b") is None  # a duplicate or late message finds it running: dropped


def test_place_in_line_counts_the_queued_rows_before_the_job(queue, faces_dir):
    studio, line, _, _ = queue
    jobs = []
    for _ in range(3):
        session_id, owner_key = session_with_photos(studio, faces_dir)
        jobs.append(line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key))
    assert [line.place_in_line(job) for job in jobs] == [(1, 3), (2, 3), (3, 3)]
    JobClaims(studio.db).claim(jobs[0].id, "gpu-a")
    assert [line.place_in_line(job) for job in jobs] == [None, (1, 2), (2, 2)]


def _rows_of_a_busy_studio(studio: Studio) -> dict[str, object]:
    """Finished, running and queued jobs as the workers leave them in the shared database, with known times."""
    from studio.job_tables import JobRow
    now = time.time()
    claims = JobClaims(studio.db)
    jobs: dict[str, object] = {}

    def row(name, offset, **flags):
        job = Job(studio.start_session(), ["linkedin_classic"], 1, **flags)
        JobRecords(studio.db, clock=lambda: now + offset).save(job)
        jobs[name] = job
        return job

    def ran(job, worker, *, seconds=None, fraction=0.0, heartbeat_age=0.0):
        claims.claim(job.id, worker)
        with studio.db.session.begin() as s:
            claim = s.get(JobClaimRow, job.id)
            claim.first_started_at, claim.fraction, claim.heartbeat_at = now - 3600, fraction, now - heartbeat_age
            if seconds is not None:
                s.get(JobRow, job.id).state, s.get(JobRow, job.id).finished_at = DONE, now - 3600 + seconds
                claim.token = None

    for minutes in (10, 15, 20):  # recent studio jobs: median 15 min
        ran(row(f"done-{minutes}", -7200), "gpu-a", seconds=minutes * 60)
    ran(row("done-more", -7200, reuse_adapter=True), "gpu-a", seconds=120)  # a "more like this" job: 2 min
    ran(row("half-done", -600), "gpu-a", fraction=0.5)
    ran(row("quarter-done", -500), "gpu-b", fraction=0.25)
    ran(row("silent", -400), "gpu-dead", fraction=0.9, heartbeat_age=3600)  # its worker is gone: not counted
    row("first", -60)
    row("second", -30, reuse_adapter=True)
    row("third", -10)
    return jobs


def test_the_wait_of_a_queued_job_is_the_work_ahead_over_the_live_workers_times_the_recent_median(queue):
    studio, line, _, _ = queue
    jobs = _rows_of_a_busy_studio(studio)
    # Two live workers; ahead of "first": half and three quarters of a 15-minute job.
    assert line.wait_seconds(jobs["first"]) == pytest.approx((0.5 + 0.75) * 900 / 2)
    assert line.wait_seconds(jobs["second"]) == pytest.approx((0.5 + 0.75 + 1) * 900 / 2)
    assert line.wait_seconds(jobs["third"]) == pytest.approx(((0.5 + 0.75 + 1) * 900 + 120) / 2)  # "more": 2 min
    assert line.place_in_line(jobs["third"]) == (3, 3)
    assert line.wait_seconds(jobs["half-done"]) is None  # running: the page shows its progress instead


def test_the_page_says_the_place_and_wait_of_a_queued_job_from_the_real_queue(queue, tmp_path, monkeypatch):
    from privacy.store.owner_presence import OwnerPresence
    from web.boundary.uploads import UploadStore
    from web.boundary.web_access import ClientIds, MediaGrants
    from web.handlers import StudioHandlers
    studio, line, _, _ = queue
    handlers = StudioHandlers(studio.settings, studio, grants=MediaGrants(), clients=ClientIds(),
                              uploads=UploadStore(tmp_path / "uploads", grace_seconds=60), line=line,
                              presence=OwnerPresence())
    jobs = _rows_of_a_busy_studio(studio)
    # (0.5 + 0.75 + 1) × 15 min / 2 workers = 16.9 min
    assert handlers._job_text(line.job_of(jobs["second"].session_id)) == (
        "Waiting for the GPU: you are 2nd of 3 in line · your turn in about 17 min.")
    with studio.db.session.begin() as s:  # every worker silent: no estimate, only the place
        for claim in s.query(JobClaimRow):
            claim.heartbeat_at -= 3600
    status = handlers._job_text(line.job_of(jobs["second"].session_id))
    assert status.endswith("about 17 min.")  # a page asks twice a second: the estimate is kept a few seconds
    monkeypatch.setattr("studio.workers.WAIT_CACHE_SECONDS", 0.0)
    # No worker beats, none says it is connected: the page says so, and what will happen (issue 28).
    assert handlers._job_text(line.job_of(jobs["second"].session_id)) == (
        "No GPU worker is connected right now, so nothing is being made. You are 2nd of 3 in line, and your job "
        "starts by itself as soon as a worker is back: you can wait here, or close this page and come back with "
        "your private link.")


def test_a_job_whose_session_was_erased_while_queued_never_starts(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    studio.delete_now(session_id)
    ran = []
    worker = worker_with(studio, lambda job, report: ran.append(job.id), broker, "gpu-a")
    assert worker.execute(job.id) == "skipped"
    assert ran == []


def test_cancel_reaches_the_worker_within_one_step(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    steps: list[float] = []

    def training(job, report):  # a step of 50 ms that checks the cancel Event between steps, as the engine does
        while not job.cancel.is_set():
            steps.append(time.perf_counter())
            time.sleep(0.05)
        from errors import Cancelled
        raise Cancelled()

    worker = worker_with(studio, training, broker, "gpu-a")
    ended: list[str] = []
    thread = threading.Thread(target=lambda: ended.append(worker.execute(job.id)))
    thread.start()
    while len(steps) < 5:
        time.sleep(0.01)
    assert line.cancel(session_id)
    cancelled_at = time.perf_counter()
    thread.join(10)
    assert ended == [CANCELLED]
    assert len([t for t in steps if t > cancelled_at]) <= 2  # the heartbeat (50 ms here) plus the step in flight
    assert line.job_of(session_id).state == CANCELLED


def test_a_dead_workers_job_runs_again_once_and_its_earlier_outputs_are_not_sealed_twice(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    claims = JobClaims(studio.db)
    assert claims.claim(job.id, "gpu-dead")  # then it sealed a headshot and was killed before ending
    studio.vault.seal(session_id, "headshot", b"from the attempt that died")
    with studio.db.session.begin() as s:
        s.get(JobClaimRow, job.id).heartbeat_at -= 120  # silent for two minutes

    def seal_one(job, report):
        studio.vault.seal(job.session_id, "headshot", b"from the re-run")

    first = worker_with(studio, seal_one, broker, "gpu-b", stale_seconds=60, attempts=2)
    second = worker_with(studio, seal_one, broker, "gpu-c", stale_seconds=60, attempts=2)
    assert first.reap() == [(job.id, QUEUED)]
    assert second.reap() == []  # one decision per dead attempt
    assert broker.messages == [job.id, job.id]  # the re-run's message: the same id
    assert first.execute(job.id) == DONE
    assert [studio.vault.open(session_id, b.id) for b in studio.vault.blobs(session_id, "headshot")] == [
        b"from the re-run"]
    assert second.execute(job.id) == "skipped"  # the first, late message: already done


def test_a_queued_job_whose_message_the_broker_lost_is_sent_again_and_runs_once(queue, faces_dir):
    from studio.job_tables import JobRow
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    with studio.db.session.begin() as s:
        s.get(JobRow, job.id).created_at -= 30  # queued half a minute ago
    held = {job.id}  # the job ids the broker holds
    ran: list[str] = []
    worker = worker_with(studio, lambda job, report: ran.append(job.id), broker, "gpu-a", stale_seconds=3,
                         in_broker=lambda: set(held))
    assert worker.republish_lost() == []  # its message waits in the broker
    held.clear()  # Redis restarted without persistence
    assert worker.republish_lost() == []  # missing once: it may be on its way to a worker
    assert worker.republish_lost() == [job.id]
    assert broker.messages == [job.id, job.id]
    held.add(job.id)
    assert worker.republish_lost() == []
    assert worker.execute(job.id) == DONE
    assert worker.execute(job.id) == "skipped"  # had the lost message come back too: dropped
    assert ran == [job.id]


def test_a_message_sent_a_moment_ago_is_not_taken_for_lost(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    worker = worker_with(studio, lambda job, report: None, broker, "gpu-a", stale_seconds=30, in_broker=set)
    assert [worker.republish_lost() for _ in range(3)] == [[], [], []]  # younger than one check (10 s)
    assert broker.messages == [job.id]


def test_a_job_that_lost_its_worker_on_its_last_attempt_is_shown_interrupted(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    JobClaims(studio.db).claim(job.id, "gpu-dead")
    with studio.db.session.begin() as s:
        s.get(JobClaimRow, job.id).heartbeat_at -= 120
    reaper = worker_with(studio, lambda job, report: None, broker, "gpu-b", stale_seconds=60, attempts=1)
    assert reaper.reap() == [(job.id, INTERRUPTED)]
    assert broker.messages == [job.id]  # not sent again
    assert line.job_of(session_id).state == INTERRUPTED


def test_queued_headshots_are_master_held_until_the_owners_page_is_present_then_only_theirs(queue, faces_dir):
    studio, line, broker, keys = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    worker = worker_with(studio, lambda job, report: run_studio_job(studio, job, report), broker, "gpu-a")
    for run in range(2):  # the second run is sealed beside the first, owner-held, headshots
        job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
        assert not studio.vault.held_by_owner(session_id, HEADSHOTS)  # lent to the studio while it is made
        assert worker.execute(job.id) == DONE
        assert not studio.vault.held_by_owner(session_id, HEADSHOTS)  # no page of the owner is open
        keys[session_id] = owner_key  # the owner's page comes back (attach with the return key)
        assert line.job_of(session_id).state == DONE
        assert studio.vault.held_by_owner(session_id, HEADSHOTS)
        del keys[session_id]
    shots = studio.headshots(session_id, owner_key)
    assert len(shots) == 2
    with pytest.raises(Exception):
        studio.headshots(session_id)  # without the owner's key nothing opens them


def test_a_page_watching_a_queued_job_sees_it_end_and_the_owner_gets_the_headshots(queue, faces_dir):
    studio, line, broker, keys = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    keys[session_id] = owner_key  # the page that asked watches
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    worker = worker_with(studio, lambda job, report: run_studio_job(studio, job, report), broker, "gpu-a")
    assert worker.execute(job.id) == DONE
    assert job.finished.wait(10)
    assert job.state == DONE and job.fraction == 1.0
    deadline = time.monotonic() + 5
    while not studio.vault.held_by_owner(session_id, HEADSHOTS):
        assert time.monotonic() < deadline, "not handed to the owner"
        time.sleep(0.02)


def test_instant_jobs_stay_in_the_web_process_in_queue_mode(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, _ = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, instant=True, keep=False, photos=["in memory"])
    assert broker.messages == []
    assert line.job_of(session_id) is job
    assert job.finished.wait(10) and job.state == DONE


def test_queue_mode_is_off_by_default_and_takes_only_redis_urls():
    from settings import SettingsError
    assert load_settings({}).queue_url == ""
    with pytest.raises(SettingsError, match="HEADSHOT_QUEUE_URL"):
        load_settings({"HEADSHOT_QUEUE_URL": "amqp://broker"})


def test_worker_metrics_count_and_time_jobs_without_naming_any(queue, faces_dir):
    from studio.worker_health import WorkerMetrics
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    metrics = WorkerMetrics(studio.db, JobClaims(studio.db).waiting)
    assert b"headshot_queue_depth 1.0" in metrics.text()
    worker = worker_with(studio, lambda job, report: None, broker, "gpu-a", metrics=metrics)
    assert worker.execute(job.id) == DONE
    text = metrics.text()
    assert b"headshot_queue_depth 0.0" in text
    assert b'headshot_job_duration_seconds_count{outcome="done"} 1.0' in text
    assert b"headshot_job_wait_seconds_count 1.0" in text
    for secret in (session_id.encode(), job.id.encode(), owner_key.hex().encode()):
        assert secret not in text


def test_a_workers_health_port_answers_ready_only_once_it_consumes(queue):
    import httpx

    from studio.worker_health import WorkerMetrics, serve_health
    from tests.postgres import _free_port
    studio, _, _, _ = queue
    consuming = threading.Event()
    port = _free_port()
    server = serve_health(port, WorkerMetrics(studio.db, lambda: 0), consuming.is_set, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/readyz").status_code == 503
        consuming.set()
        assert httpx.get(url + "/readyz").status_code == 200
        assert "headshot_queue_depth" in httpx.get(url + "/metrics").text
        assert httpx.get(url + "/anything-else").status_code == 404
    finally:
        server.shutdown()


def test_the_policy_in_queue_mode_says_headshots_become_the_owners_once_their_page_is_open():
    from privacy.records.notice import full_policy
    default = full_policy(load_settings({}))
    queued = full_policy(load_settings({"HEADSHOT_QUEUE_URL": "redis://redis:6379/0"}))
    assert "As soon as the headshots are made, their key is re-locked" in default
    assert "separate GPU workers" not in default
    assert "as soon as they are made and a page of yours is open" in queued
    assert "Until then the studio could open them." in queued


def test_celery_acknowledges_a_job_only_when_it_ends_takes_one_at_a_time_and_waits_longer_than_a_job():
    from studio.workers import celery_app
    settings = load_settings({})
    conf = celery_app("redis://127.0.0.1:1/0", visibility_seconds=settings.job_visibility_seconds).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.worker_concurrency == 1
    assert conf.broker_transport_options["visibility_timeout"] == settings.job_visibility_seconds >= 3600
    assert conf.accept_content == ["json"]  # a message is data (a job id), never a pickled object


# --- no live worker (issue 28): the web replicas reap too, and the page says what happened ----------------------

def dead_claim(studio: Studio, job: Job) -> None:
    """A worker claimed the job, then was killed: its heartbeat stopped two minutes ago."""
    JobClaims(studio.db).claim(job.id, "gpu-dead")
    with studio.db.session.begin() as s:
        s.get(JobClaimRow, job.id).heartbeat_at -= 120


def replica_line(studio: Studio, broker: Broker, **kwargs) -> QueuedLine:
    local = GpuLine(lambda job, report: None, capacity=4, records=JobRecords(studio.db))
    return QueuedLine(studio, send=broker.send, local=local, capacity=4, owner_key_of=dict().get, poll_seconds=0.05,
                      **kwargs)


def test_with_every_worker_gone_a_web_replica_marks_the_job_within_one_check(queue, faces_dir):
    from web.line_words import job_text
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    dead_claim(studio, job)
    replica = replica_line(studio, broker, stale_seconds=2, attempts=1)  # no JobWorker anywhere
    try:
        started = time.monotonic()
        while replica.job_of(session_id).state != INTERRUPTED and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert time.monotonic() - started <= replica.reaper.check_seconds + 1.0  # decided at its first check
        seen = replica.job_of(session_id)
        assert seen.state == INTERRUPTED and seen.error.code == "worker_lost"
        words = job_text(seen, replica)
        assert "GPU worker stopped" in words and "Resume" in words and "No GPU worker is connected" in words
        assert "single GPU" not in words
    finally:
        replica.close()


def test_a_worker_and_a_web_replica_looking_at_once_decide_once(queue, faces_dir):
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    dead_claim(studio, job)
    worker = worker_with(studio, lambda job, report: None, broker, "gpu-b", stale_seconds=60, attempts=2)
    decisions = [line.reaper.reap(), worker.reap(), line.reaper.reap()]
    assert sorted(decisions, key=len) == [[], [], [(job.id, QUEUED)]]  # one decision, whoever looked first
    assert broker.messages == [job.id, job.id]  # and one message to run it again


def test_a_job_queued_again_after_its_worker_died_says_so_and_says_when_no_worker_is_connected(queue, faces_dir):
    from web.line_words import job_text
    studio, line, broker, _ = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    dead_claim(studio, job)
    assert line.reaper.reap() == [(job.id, QUEUED)]
    seen = line.job_of(session_id)
    words = job_text(seen, line)
    assert seen.state == QUEUED and "stopped, so your job went back in line" in words
    assert "No GPU worker is connected right now" in words and "1st of 1 in line" in words
    worker = worker_with(studio, lambda job, report: None, broker, "gpu-b", stale_seconds=60)
    worker.say_connected()
    line._connected = None  # the page's next look, past the few seconds the count is kept
    assert line.workers_connected() == 1
    assert "No GPU worker" not in job_text(line.job_of(session_id), line)
    assert worker.execute(job.id) == DONE
    assert line.job_of(session_id).error is None  # claimed again, the row forgot why it had waited


def test_a_worker_silent_past_the_stale_time_is_not_counted_as_connected(queue):
    studio, line, broker, _ = queue
    worker = worker_with(studio, lambda job, report: None, broker, "gpu-a", stale_seconds=60)
    worker.say_connected()
    assert JobClaims(studio.db).workers_connected(60) == 1
    from studio.job_tables import WorkerRow
    with studio.db.session.begin() as s:
        s.get(WorkerRow, "gpu-a").seen_at -= 61
    assert JobClaims(studio.db).workers_connected(60) == 0
