"""The GPU line's Prometheus metrics, for the app's /metrics and a worker's: counts and durations, never a person.

    headshot_queue_depth                 jobs waiting for a GPU (in queue mode: every worker's queue, the jobs table)
    headshot_jobs_running                jobs running (in queue mode: on any worker)
    headshot_job_duration_seconds        time a job ran in this process, by outcome (done, failed, cancelled, ...)
    headshot_job_wait_seconds            time from a job's submission to its start in this process
    headshot_jobs_interrupted_total      jobs this process found interrupted (a restart) or marked so (a lost worker)
    headshot_jobs_lost_worker_total      jobs whose worker stopped beating, by this reaper's decision (any process)
    headshot_jobs_republished_total      queued jobs whose broker message was lost, sent again (workers)

Each process times the jobs it runs (the app: in-process jobs, and Instant jobs in queue mode; a worker: the
jobs of its queue), so summing a histogram over every target counts each job once; the two gauges are read
from the line (the shared jobs table in queue mode) at each scrape, alike on every target. Labels are outcome
and decision words only: no job id, session id, name or address can be a label value.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)  # seconds: a tiny-model job to an SDXL run
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60, 300, 900, 3600)  # seconds from enqueue to start
SCRAPE_CACHE_SECONDS = 1.0  # a scrape reads the database: answered from memory this long, however often asked


class LineMetrics:
    """One process's registry (its own, not prometheus_client's global one: several in one test process)."""

    def __init__(self, depth: Callable[[], int], running: Callable[[], int], *, cache_seconds: float = 0.0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        Gauge("headshot_queue_depth", "Studio jobs waiting for a GPU (queue mode: for any worker, the jobs table).",
              registry=self.registry).set_function(depth)
        Gauge("headshot_jobs_running", "Jobs running (queue mode: on any worker, the jobs table).",
              registry=self.registry).set_function(running)
        self.durations = Histogram("headshot_job_duration_seconds", "Time a job ran in this process, by outcome.",
                                   ["outcome"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.waits = Histogram("headshot_job_wait_seconds",
                               "Time from a job's enqueueing to its start in this process.",
                               buckets=WAIT_BUCKETS, registry=self.registry)
        self.interrupted = Counter("headshot_jobs_interrupted",
                                   "Jobs this process found interrupted by a restart, or marked interrupted.",
                                   registry=self.registry)
        self.lost = Counter("headshot_jobs_lost_worker",
                            "Jobs whose worker stopped beating, by what this worker's reaper decided.",
                            ["decision"], registry=self.registry)
        self.republished = Counter("headshot_jobs_republished",
                                   "Queued jobs whose broker message was lost (a flushed or restarted Redis), "
                                   "sent again.",
                                   registry=self.registry)
        self.cache_seconds = cache_seconds  # the app's: SCRAPE_CACHE_SECONDS (anyone may ask it)
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] = (float("-inf"), b"")

    def text(self) -> bytes:
        """The Prometheus text exposition, at most `cache_seconds` old."""
        from prometheus_client import generate_latest
        with self._lock:  # one scrape at a time reads the database; the others wait for its answer
            taken, body = self._cached
            if time.monotonic() - taken >= self.cache_seconds:
                body = generate_latest(self.registry)
                self._cached = (time.monotonic(), body)
            return body
