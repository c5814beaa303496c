"""The GPU line: one job at a time, a bounded line, and erasure that frees the GPU at the next step."""

import threading
import time
from types import SimpleNamespace

import pytest

from errors import Busy, Cancelled, ModelUnavailable, OutOfMemory
from studio.jobs import CANCELLED, DONE, FAILED, GpuLine


class FakeGpu:
    """Stands in for training: `steps` steps of `step_seconds`, checking the cancel flag between steps."""

    def __init__(self, steps: int = 50, step_seconds: float = 0.01) -> None:
        self.steps, self.step_seconds = steps, step_seconds
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.fail_with: Exception | None = None

    def __call__(self, job, progress):
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.started.append(job.session_id)
        try:
            if self.fail_with is not None:
                raise self.fail_with
            for step in range(self.steps):
                if job.cancel.is_set():
                    raise Cancelled()
                time.sleep(self.step_seconds)
                progress(SimpleNamespace(stage="training", fraction=(step + 1) / self.steps, eta_seconds=1.0))
            return f"headshots of {job.session_id}"
        finally:
            with self.lock:
                self.running -= 1


def wait_until_running(job) -> None:
    while job.state != "running":
        time.sleep(0.005)


@pytest.fixture
def gpu():
    return FakeGpu()


@pytest.fixture
def line(gpu):
    line = GpuLine(gpu, capacity=3)
    yield line
    line.close()


def test_jobs_run_one_at_a_time_in_arrival_order(line, gpu):
    jobs = [line.submit(f"s{i}", ["corporate"], 1) for i in range(3)]
    for job in jobs:
        assert job.finished.wait(10)
    assert [j.state for j in jobs] == [DONE] * 3 and jobs[0].result == "headshots of s0"
    assert gpu.most_at_once == 1 and gpu.started == ["s0", "s1", "s2"]


def test_a_full_line_refuses_with_a_message_and_keeps_no_job(gpu):
    gpu.steps, gpu.step_seconds = 100, 0.02
    line = GpuLine(gpu, capacity=2)
    try:
        wait_until_running(line.submit("running", ["c"], 1))
        line.submit("a", ["c"], 1), line.submit("b", ["c"], 1)
        with pytest.raises(Busy, match="line is full"):
            line.submit("c", ["c"], 1)
        assert line.job_of("c") is None
    finally:
        line.close()


def test_a_session_gets_one_job_however_often_it_asks(line):
    first = line.submit("s", ["c"], 1)
    assert line.submit("s", ["c"], 1) is first


def test_a_waiting_job_knows_its_place_in_line(gpu):
    gpu.steps, gpu.step_seconds = 100, 0.02
    line = GpuLine(gpu, capacity=5)
    try:
        running = line.submit("r", ["c"], 1)
        wait_until_running(running)
        second, third = line.submit("a", ["c"], 1), line.submit("b", ["c"], 1)
        assert line.place_in_line(second) == (1, 2) and line.place_in_line(third) == (2, 2)
        assert line.place_in_line(running) is None
    finally:
        line.close()


def test_erasing_a_running_session_stops_its_job_at_the_next_step_and_starts_the_next(gpu):
    gpu.steps, gpu.step_seconds = 1000, 0.01  # 10 s if never stopped
    line = GpuLine(gpu, capacity=3)
    try:
        victim = line.submit("erased", ["c"], 1)
        nxt = line.submit("next", ["c"], 1)
        while victim.fraction < 0.01:
            time.sleep(0.005)
        erased_at = time.monotonic()
        line.cancel_session("erased")
        assert victim.finished.wait(2) and victim.state == CANCELLED
        stopped_after = victim.finished_at - erased_at
        while nxt.state == "queued":
            time.sleep(0.005)
        assert stopped_after < 0.5 and nxt.state == "running"
        assert line.job_of("erased") is None  # nothing of an erased session stays in the line's memory
    finally:
        line.close()


def test_erasing_a_waiting_session_takes_its_job_out_of_line_before_it_starts(gpu):
    gpu.steps, gpu.step_seconds = 30, 0.02
    line = GpuLine(gpu, capacity=3)
    try:
        line.submit("first", ["c"], 1)
        waiting = line.submit("erased", ["c"], 1)
        assert line.held_sessions() == {"first", "erased"}  # what a memory sweep asks the database about
        line.cancel_session("erased")
        assert line.held_sessions() == {"first"}
        assert waiting.state == CANCELLED
        time.sleep(1.0)
        assert "erased" not in gpu.started
    finally:
        line.close()


def test_a_failed_job_tells_the_person_in_words_and_the_line_goes_on(line, gpu):
    gpu.fail_with = OutOfMemory()
    failed = line.submit("oom", ["c"], 1)
    assert failed.finished.wait(5) and failed.state == FAILED and "memory" in failed.error.message
    gpu.fail_with = RuntimeError("/data/vault/secret-path exploded")
    crashed = line.submit("crash", ["c"], 1)
    assert crashed.finished.wait(5) and crashed.state == FAILED
    assert "secret-path" not in crashed.error.message and "our side" in crashed.error.message
    gpu.fail_with = None
    assert line.submit("after", ["c"], 1).finished.wait(5)


def test_a_model_that_cannot_load_is_told_to_the_person_in_words_and_to_the_operator_in_the_log(line, gpu, caplog):
    gpu.fail_with = ModelUnavailable("Base model 'x' is not available. Set HEADSHOT_BASE_MODEL to a local directory.")
    with caplog.at_level("ERROR", logger="studio.jobs"):
        job = line.submit("no-model", ["c"], 1)
        assert job.finished.wait(5)
    assert job.state == FAILED and job.error.code == "model_unavailable"
    assert "model could not be loaded" in job.error.message and "HEADSHOT_" not in job.error.message
    assert "HEADSHOT_BASE_MODEL" in caplog.text


def test_progress_never_exceeds_the_whole(line):
    job = line.submit("s", ["c"], 1)
    seen = []
    while not job.finished.is_set():
        seen.append(job.fraction)
        time.sleep(0.002)
    assert max(seen + [job.fraction]) <= 1.0 and job.fraction == 1.0


# --- Instant jobs: their photos live in memory only ------------------------------------------------------------

def test_an_instant_job_holds_its_photos_only_until_it_ends_and_its_record_names_no_photo(tmp_path, gpu):
    from privacy.store.database import Database
    from studio.job_tables import JobRow
    from studio.jobs import JobRecords
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    session_id = _session_row(db)
    records = JobRecords(db)
    photos = [object(), object()]  # stand-ins for screened photos: the line never looks inside
    seen = []
    line = GpuLine(lambda job, progress: seen.append(list(job.photos)) or "done", capacity=3, records=records)
    try:
        job = line.submit(session_id, ["linkedin_classic"], 2, instant=True, keep=False, photos=photos)
        assert job.finished.wait(5) and job.state == DONE
        assert seen == [photos] and job.photos == []  # given to the run, then dropped
        with db.session() as s:
            [row] = s.query(JobRow).all()
        assert row.style_ids == '{"styles": ["linkedin_classic"], "instant": true, "keep": false}'
        back = records.latest(session_id)
        assert (back.kind, back.keep, back.photos) == ("instant", False, [])
    finally:
        line.close()
        db.dispose()


def test_an_instant_job_that_keeps_nothing_delivers_nothing_once_cancelled(gpu):
    """Its headshots could reach only the page that asked; once that page has gone (cancel), nothing is kept."""
    release = threading.Event()

    def run(job, progress):
        release.wait(5)
        return "headshots nobody can receive"

    line = GpuLine(run, capacity=3)
    try:
        job = line.submit("s1", ["linkedin_classic"], 1, instant=True, keep=False, photos=[object()])
        wait_until_running(job)
        job.cancel.set()  # the page went away while the run could no longer stop
        release.set()
        assert job.finished.wait(5)
        assert job.state == CANCELLED and job.result is None and job.photos == []
    finally:
        line.close()


def _session_row(db) -> str:
    from privacy.store.database import SessionRow
    with db.session.begin() as s:
        s.add(SessionRow(id="s" * 32, audit_id="a" * 16, created_at=0.0))
    return "s" * 32


def test_a_wait_is_the_work_ahead_over_the_workers_times_the_median_duration():
    from studio.jobs import median_durations, wait_estimate
    medians = median_durations([("studio", 600), ("studio", 900), ("studio", 1200), ("more", 60), ("more", 180)])
    assert medians == {"studio": 900, "more": 120}
    assert wait_estimate([("studio", 1.0)] * 3, 1, medians) == 3 * 900  # 3 jobs ahead, one worker
    assert wait_estimate([("studio", 1.0)] * 3, 2, medians) == 3 * 900 / 2  # two workers share them
    assert wait_estimate([("studio", 0.25), ("more", 1.0)], 1, medians) == 0.25 * 900 + 120  # a quarter left
    assert wait_estimate([], 1, medians) == 0  # first in line, nothing running
    assert wait_estimate([("studio", 1.0)], 0, medians) is None  # no live worker: unknown, not "never"
    assert wait_estimate([("instant", 1.0)], 1, medians) is None  # a kind never finished yet: unknown


def test_a_waiting_jobs_wait_comes_from_the_line_and_is_unknown_until_a_job_has_finished():
    release, halfway = threading.Event(), threading.Event()

    def run(job, progress):
        if job.session_id == "first":
            time.sleep(0.2)
            return "done"
        progress(SimpleNamespace(stage="training", fraction=0.5, eta_seconds=None))
        halfway.set()
        release.wait(10)
        return "done"

    line = GpuLine(run, capacity=5)
    try:
        first = line.submit("first", ["c"], 1)
        queued_behind_first = line.submit("early", ["c"], 1)
        assert line.wait_seconds(queued_behind_first) is None  # no job has finished: nothing to go by
        assert first.finished.wait(10)
        assert halfway.wait(10)  # "early" runs, half done
        second, third = line.submit("a", ["c"], 1), line.submit("b", ["c"], 1)
        wait_second, wait_third = line.wait_seconds(second), line.wait_seconds(third)
        assert 0.5 * 0.2 <= wait_second < 0.5 * 2.0  # half of the one finished job's duration (0.2 s and a bit)
        assert wait_third == pytest.approx(3 * wait_second)  # half a job, then a whole one, ahead of it
        assert line.wait_seconds(queued_behind_first) is None  # running now: no wait to show
    finally:
        release.set()
        line.close()


# --- ZeroGPU: the line keeps the order, a page following the job runs it in its own request -------------------

def take_when_running(line, job, *, by: list[str], name: str) -> None:
    """A page following `job`: when its turn comes, take it and run it on a thread of this page's own."""
    while not job.finished.is_set():
        run = line.take_turn(job)
        if run is not None:
            by.append(name)
            threading.Thread(target=run, name=name).start()
            return
        time.sleep(0.01)


def test_on_zerogpu_each_job_runs_in_the_thread_of_the_one_page_that_takes_its_turn_in_arrival_order(gpu):
    threads = []

    def gpu_in_threads(job, progress):
        threads.append(threading.current_thread().name)
        return gpu(job, progress)

    line = GpuLine(gpu_in_threads, capacity=3, in_request=True)
    try:
        first, second = line.submit("s1", ["a"], 1), line.submit("s2", ["a"], 1)
        takers: list[str] = []
        pages = [threading.Thread(target=take_when_running, args=(line, job), kwargs={"by": takers, "name": name})
                 for job, name in ((second, "page-2"), (first, "page-1"), (first, "page-1-other-tab"))]
        for page in pages:
            page.start()
        assert first.finished.wait(10) and second.finished.wait(10)
        assert (first.state, second.state) == (DONE, DONE) and gpu.started == ["s1", "s2"] and gpu.most_at_once == 1
        assert threads == ["page-1", "page-2"] or threads == ["page-1-other-tab", "page-2"]
        assert sorted(takers) in (["page-1", "page-2"], ["page-1-other-tab", "page-2"])  # one page per turn
    finally:
        line.close()


def test_on_zerogpu_a_turn_no_page_takes_ends_the_job_in_words_and_the_line_goes_on(gpu, monkeypatch):
    monkeypatch.setattr("studio.jobs.TURN_TAKEN_WITHIN_SECONDS", 0.3)
    line = GpuLine(gpu, capacity=3, in_request=True)
    try:
        left = line.submit("gone", ["a"], 1)  # its page went away
        waiting = line.submit("here", ["a"], 1)
        page = threading.Thread(target=take_when_running, args=(line, waiting), kwargs={"by": [], "name": "page"})
        page.start()
        assert left.finished.wait(5) and left.state == FAILED and left.error.code == "page_gone"
        assert "Press “Make” again" in left.error.message
        assert waiting.finished.wait(5) and waiting.state == DONE and gpu.started == ["here"]
        assert line.take_turn(left) is None  # too late: nothing of it runs
    finally:
        line.close()


def test_on_zerogpu_a_job_cancelled_before_a_page_takes_its_turn_never_runs(gpu):
    line = GpuLine(gpu, capacity=3, in_request=True)
    try:
        job = line.submit("s1", ["a"], 1)
        wait_until_running(job)
        assert line.cancel("s1")
        assert job.finished.wait(5) and job.state == CANCELLED and gpu.started == []
    finally:
        line.close()
