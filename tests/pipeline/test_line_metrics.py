"""The GPU line's Prometheus metrics: they follow the line as jobs wait, run and end, and name nobody."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from studio.jobs import GpuLine
from studio.line_metrics import LineMetrics


def samples(metrics: LineMetrics) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}, as Prometheus reads the exposition."""
    text = metrics.text().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_depth_running_durations_and_waits_follow_the_line_and_name_no_job_or_session():
    release = threading.Event()

    def run(job, progress):
        progress(SimpleNamespace(stage="training", fraction=0.5, eta_seconds=None))
        release.wait(10)
        if job.session_id.startswith("fail"):
            raise RuntimeError("a bug")
        return "done"

    line = GpuLine(run, capacity=5)
    metrics = LineMetrics(line.depth, line.running)
    line.metrics = metrics
    try:
        first = line.submit("session-secret-1", ["c"], 1)
        while first.state != "running":
            time.sleep(0.005)
        line.submit("session-secret-2", ["c"], 1)
        line.submit("fail-session-secret-3", ["c"], 1)
        seen = samples(metrics)
        assert (seen[("headshot_queue_depth", ())], seen[("headshot_jobs_running", ())]) == (2, 1)
        assert seen[("headshot_job_wait_seconds_count", ())] == 1  # the first started; two wait
        release.set()
        deadline = time.monotonic() + 10
        while line.depth() or line.running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)  # the last job's end is recorded just after it leaves the line
        seen = samples(metrics)
        assert (seen[("headshot_queue_depth", ())], seen[("headshot_jobs_running", ())]) == (0, 0)
        assert seen[("headshot_job_duration_seconds_count", (("outcome", "done"),))] == 2
        assert seen[("headshot_job_duration_seconds_count", (("outcome", "failed"),))] == 1
        assert seen[("headshot_job_wait_seconds_count", ())] == 3
        body = metrics.text()
        assert b"secret" not in body and first.id.encode() not in body
    finally:
        release.set()
        line.close()


def test_a_scrape_is_answered_from_memory_for_a_second_however_often_it_is_asked():
    reads = []

    def depth() -> int:
        reads.append(1)
        return len(reads)

    metrics = LineMetrics(depth, lambda: 0, cache_seconds=1.0)
    bodies = {metrics.text() for _ in range(50)}
    assert len(bodies) == 1 and len(reads) == 1  # one database read for fifty scrapes
    time.sleep(1.05)
    assert b"headshot_queue_depth 2.0" in metrics.text()
