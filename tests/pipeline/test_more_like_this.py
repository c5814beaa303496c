"""More like this: while the trained adapter is kept, more headshots come from it without training again."""

from __future__ import annotations

import pytest

import pipeline.engine as engine_module
import pipeline.train_lora as train_lora_module
from errors import AdapterGone, Cancelled, ModelMismatch, OwnerKeyRequired
from privacy.lifecycle import retention
from privacy.lifecycle.consent import Attestations
from privacy.records import audit
from settings import load_settings
from studio.jobs import DONE, INTERRUPTED, GpuLine, Job, JobRecords
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def studio(tmp_path_factory, clock):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("more")),
        "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2",
        # Random tiny weights draw no face, so every likeness is 0: keep them all to exercise delivery.
        "HEADSHOT_LIKENESS_THRESHOLD": "0", "HEADSHOT_UPLOAD_RETENTION_HOURS": "1",
    })
    s = Studio(settings, clock=clock)
    yield s
    s.close()


@pytest.fixture
def forbid_training(monkeypatch):
    """Call it once the full run is done: any training from then on fails the test, wherever it is called from."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise AssertionError("more like this must not train")

    def forbid() -> list:
        monkeypatch.setattr(engine_module, "train_lora", refuse)
        monkeypatch.setattr(train_lora_module, "train_lora", refuse)
        return calls
    return forbid


def trained_session(studio: Studio, faces_dir, styles=("linkedin_classic",), count=2) -> tuple[str, bytes]:
    """A session whose owner-sealed full run is done: adapter kept, headshots made with seeds 0..count-1."""
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    owner_key = studio.issue_return_key(session_id).owner_key
    assert studio.upload(session_id, [(faces_dir / "obama_1.jpg").read_bytes()]).acceptable
    studio.make_headshots(session_id, list(styles), count, owner_key=owner_key)
    return session_id, owner_key


def test_more_like_this_trains_nothing_and_adds_new_marked_headshots(studio, clock, faces_dir, forbid_training):
    session_id, owner_key = trained_session(studio, faces_dir)
    clock.now += 1  # a later run (the gallery lists runs by when they were made, newest first)
    training_calls = forbid_training()
    [adapter_before] = studio.vault.blobs(session_id, "adapter")
    before = studio.headshots(session_id, owner_key)
    assert studio.can_make_more(session_id)

    stages = []
    run = studio.more_like_this(session_id, ["linkedin_classic"], 2, owner_key=owner_key, progress=stages.append)

    assert training_calls == []
    assert studio.vault.blobs(session_id, "adapter") == [adapter_before]  # same blob, same ciphertext digest
    after = studio.headshots(session_id, owner_key)
    assert len(after) == len(before) + 2
    assert [h.blob_id for h in after[:2]] == [h.blob_id for h in run.delivered]  # the newest run comes first
    assert {h.seed for h in before} == {0, 1} and {h.seed for h in run.delivered} == {2, 3}
    for shot in run.delivered:
        report = studio.provenance.verify_image(studio.headshot_bytes(session_id, shot.blob_id, owner_key))
        assert report.is_ours and report.c2pa_state == "trusted" and report.watermark_found
    assert {p.stage for p in stages} == {"generating", "scoring"}
    assert stages[0].fraction == 0.0 and stages[-1].fraction == 1.0
    assert all(a.fraction <= b.fraction for a, b in zip(stages, stages[1:]))
    events = audit.events_for(studio.db, studio.vault.audit_id(session_id))
    assert [e["event"] for e in events].count(audit.TRAINING_STARTED) == 1  # the full run's only
    assert events[-1]["event"] == audit.HEADSHOTS_GENERATED and events[-1]["detail"]["adapter_reused"] is True


def test_new_seeds_never_repeat_one_used_for_any_chosen_style(studio, faces_dir, forbid_training):
    session_id, owner_key = trained_session(studio, faces_dir)  # linkedin_classic: seeds 0, 1
    forbid_training()
    both = studio.more_like_this(session_id, ["corporate_grey", "linkedin_classic"], 1, owner_key=owner_key)
    assert sorted((h.style_id, h.seed) for h in both.delivered) == [("corporate_grey", 2), ("linkedin_classic", 2)]
    again = studio.more_like_this(session_id, ["corporate_grey"], 2, owner_key=owner_key)
    assert sorted(h.seed for h in again.delivered) == [3, 4]
    pairs = [(h.style_id, h.seed) for h in studio.headshots(session_id, owner_key)]
    assert len(pairs) == len(set(pairs)) == 6


def test_owner_sealed_headshots_need_the_owner_key_before_anything_is_generated(studio, faces_dir, monkeypatch):
    session_id, _ = trained_session(studio, faces_dir, count=1)
    monkeypatch.setattr(engine_module, "generate", lambda *a, **k: pytest.fail("generated without a way to seal"))
    with pytest.raises(OwnerKeyRequired):
        studio.more_like_this(session_id, ["linkedin_classic"], 1)


def test_the_adapter_runs_only_on_the_base_model_it_was_trained_on(studio, faces_dir):
    session_id, owner_key = trained_session(studio, faces_dir, count=1)
    with pytest.raises(ModelMismatch) as refused:
        studio.more_like_this(session_id, ["linkedin_classic"], 1, owner_key=owner_key, model_id="tiny-sdxl")
    assert refused.value.code == "model_mismatch"


def test_a_cancelled_more_job_keeps_nothing(studio, faces_dir):
    import threading
    session_id, owner_key = trained_session(studio, faces_dir, count=1)
    before = studio.vault.blobs(session_id)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        studio.more_like_this(session_id, ["linkedin_classic"], 1, owner_key=owner_key, cancel=cancel)
    assert studio.vault.blobs(session_id) == before


def test_without_a_trained_adapter_more_is_refused_and_says_what_to_do(studio, faces_dir):
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    assert studio.upload(session_id, [(faces_dir / "obama_1.jpg").read_bytes()]).acceptable
    assert not studio.can_make_more(session_id)
    with pytest.raises(AdapterGone, match="make headshots first") as refused:
        studio.more_like_this(session_id, ["linkedin_classic"], 1)
    assert refused.value.code == "adapter_gone"


def test_once_the_identity_data_is_erased_on_schedule_more_is_refused_but_the_headshots_stay(studio, clock, faces_dir):
    session_id, owner_key = trained_session(studio, faces_dir, count=1)
    assert studio.can_make_more(session_id)
    clock.now += 1.01 * HOUR  # past the upload retention: due, even before the sweep runs (later tests start anew)
    assert not studio.can_make_more(session_id)
    retention.sweep(studio.erasure, clock.now)
    assert studio.vault.blobs(session_id, "adapter") == [] and not studio.can_make_more(session_id)
    with pytest.raises(AdapterGone, match="erased on schedule") as refused:
        studio.more_like_this(session_id, ["linkedin_classic"], 1, owner_key=owner_key)
    assert refused.value.code == "adapter_gone"
    with pytest.raises(AdapterGone):
        studio.check_ready_to_make_more(session_id, ["linkedin_classic"])
    assert len(studio.headshots(session_id, owner_key)) == 1  # kept longer than the identity data


def test_a_more_job_runs_through_the_line_and_reads_back_as_one_after_a_restart(studio, faces_dir, forbid_training):
    session_id, owner_key = trained_session(studio, faces_dir, count=1)
    forbid_training()
    records = JobRecords(studio.db, clock=studio.clock)

    def run(job, report):  # as studio.gpu_call.run
        assert job.reuse_adapter
        return studio.more_like_this(session_id, job.style_ids, job.count, progress=report, cancel=job.cancel,
                                     owner_key=job.owner_key)

    line = GpuLine(run, capacity=2, records=records)
    try:
        job = line.submit(session_id, ["linkedin_classic"], 1, owner_key=owner_key, reuse_adapter=True)
        assert job.finished.wait(120) and job.state == DONE and len(job.result.delivered) == 1
    finally:
        line.close()
    stored = records.latest(session_id)
    assert stored.reuse_adapter and stored.style_ids == ["linkedin_classic"]
    # A restart while a "more" job waits: it reads back interrupted, and still a "more" job.
    studio.clock.now += 1  # the later job is the latest
    waiting = JobRecords(studio.db, clock=studio.clock)
    waiting.save(Job(session_id, ["corporate_grey"], 2, reuse_adapter=True))
    assert waiting.mark_interrupted() == 1
    resumed = waiting.latest(session_id)
    assert resumed.state == INTERRUPTED and resumed.reuse_adapter and resumed.style_ids == ["corporate_grey"]
