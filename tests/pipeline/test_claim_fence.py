"""Idempotent sealing in queue mode: an attempt seals only while it holds its job's claim, on SQLite and PostgreSQL.

A worker can be alive and silent: paused by the OS, or cut off from the database, past the stale time. The reaper
then gives its job to another worker. When the paused attempt wakes, nothing of it may be sealed: its seals are
fenced by its claim (studio.workers, privacy.store.vault.sealing_only_while), inside each seal's own transaction.
"""

from __future__ import annotations

import threading

import pytest

from errors import Cancelled
from privacy.store.vault import sealing_only_while
from settings import load_settings
from studio.job_claims import JobClaims
from studio.job_tables import JobClaimRow
from studio.jobs import DONE, INTERRUPTED, QUEUED, GpuLine, JobRecords
from studio.service import Studio
from studio.workers import JobWorker, QueuedLine, run_studio_job
from tests.pipeline.helpers import session_with_photos

pytestmark = pytest.mark.databases("sqlite", "postgresql")

OUTPUTS = ("adapter", "headshot", "report")


@pytest.fixture
def queue(tmp_path, database_url):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_DATABASE_URL": database_url, "HEADSHOT_BASE_MODEL": "tiny-sd",
        "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2",
        "HEADSHOT_LIKENESS_THRESHOLD": "0", "HEADSHOT_IMAGES_PER_STYLE": "1",
        "HEADSHOT_QUEUE_URL": "redis://127.0.0.1:1/0",
    })
    studio = Studio(settings)
    messages: list[str] = []
    local = GpuLine(lambda job, report: None, capacity=4, records=JobRecords(studio.db))
    line = QueuedLine(studio, send=messages.append, local=local, capacity=4, owner_key_of=lambda _: None,
                      poll_seconds=0.05)
    yield studio, line, messages
    line.close()
    studio.close()


def _outputs(studio: Studio, session_id: str) -> dict[str, list[str]]:
    return {kind: [b.id for b in studio.vault.blobs(session_id, kind)] for kind in OUTPUTS}


def _go_silent(studio: Studio, job_id: str) -> None:
    """The attempt's last heartbeat, two minutes ago: what the reaper sees of a paused or cut-off worker."""
    with studio.db.session.begin() as s:
        s.get(JobClaimRow, job_id).heartbeat_at -= 120


def test_a_paused_attempt_that_wakes_after_its_job_was_run_again_seals_nothing(queue, faces_dir):
    studio, line, messages = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    paused, wake = threading.Event(), threading.Event()

    def paused_during_training(job, report):
        def progress(p):
            if p.stage == "training" and not paused.is_set():  # the OS stops the process here, mid-training
                paused.set()
                assert wake.wait(60)
            report(p)
        return run_studio_job(studio, job, progress)

    # Its heartbeat is frozen with it (a beat every hour: none during the test).
    sleeper = JobWorker(studio, paused_during_training, enqueue=messages.append, name="gpu-paused",
                        heartbeat_seconds=3600, stale_seconds=60)
    ended: list[str] = []
    first = threading.Thread(target=lambda: ended.append(sleeper.execute(job.id)))
    first.start()
    assert paused.wait(60)
    _go_silent(studio, job.id)

    other = JobWorker(studio, lambda job, report: run_studio_job(studio, job, report), enqueue=messages.append,
                      name="gpu-other", heartbeat_seconds=0.05, stale_seconds=60)
    assert other.reap() == [(job.id, QUEUED)]
    assert other.execute(job.id) == DONE
    made = _outputs(studio, session_id)
    assert [len(made[kind]) for kind in OUTPUTS] == [1, 1, 1]

    wake.set()  # the paused attempt finishes training and reaches its seals
    first.join(60)
    assert ended == ["superseded"]
    assert _outputs(studio, session_id) == made  # exactly the re-run's set: nothing of the woken attempt
    assert line.job_of(session_id).state == DONE
    with studio.db.session() as s:
        claim = s.get(JobClaimRow, job.id)
        assert (claim.worker, claim.attempts, claim.token) == ("gpu-other", 2, None)
    assert len(studio.headshots(session_id)) == 1


def test_a_seal_fenced_by_a_claim_the_reaper_took_writes_no_file_and_no_row(queue, faces_dir):
    studio, line, messages = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    claims = JobClaims(studio.db)
    token, _, _ = claims.claim(job.id, "gpu-paused")
    files_before = sorted(p.name for p in studio.vault.blob_dir.iterdir())
    def fence():
        return sealing_only_while(lambda s: claims.holds(s, job.id, token))

    with fence():
        assert studio.vault.seal(session_id, "headshot", b"while the claim holds")  # sealed: the claim is its own
    _go_silent(studio, job.id)
    assert [decision[:2] for decision in claims.reap(60, attempts=2)] == [(job.id, QUEUED)]
    with fence(), pytest.raises(Cancelled):
        studio.vault.seal(session_id, "headshot", b"after the reaper took the claim")
    assert len(studio.vault.blobs(session_id, "headshot")) == 1
    assert len(sorted(p.name for p in studio.vault.blob_dir.iterdir())) == len(files_before) + 1
    assert studio.vault.seal(session_id, "report", b"unfenced: another caller")  # the fence is this context's only


def test_what_a_lost_attempt_sealed_before_it_went_silent_is_discarded_when_it_is_marked_interrupted(queue,
                                                                                                     faces_dir):
    studio, line, messages = queue
    session_id, owner_key = session_with_photos(studio, faces_dir)
    job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    JobClaims(studio.db).claim(job.id, "gpu-lost")
    studio.vault.seal(session_id, "adapter", b"sealed by the attempt, then silence")
    _go_silent(studio, job.id)
    reaper = JobWorker(studio, lambda job, report: None, enqueue=messages.append, name="gpu-b", stale_seconds=60,
                       attempts=1)
    assert reaper.reap() == [(job.id, INTERRUPTED)]
    assert _outputs(studio, session_id) == {kind: [] for kind in OUTPUTS}
    assert len(studio.vault.blobs(session_id, "photo")) == 1  # the person's photos stay, to resume
