"""A GPU worker's health, readiness and Prometheus metrics, on a small HTTP port of its own (no personal data).

    GET /healthz   200 while the process serves (a liveness probe: restart the worker when it stops answering)
    GET /readyz    200 once the worker consumes from the broker and its database answers, else 503
    GET /metrics   Prometheus text: queue depth, running jobs, job durations and waits, jobs that lost a worker

Every metric is a count or a duration, labelled at most by an outcome word: never a job, session or
person. The queue depth is read from the shared jobs table at each scrape (what every worker sees alike).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from sqlalchemy import func, select, text

from privacy.database import JobRow

log = logging.getLogger(__name__)

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)  # seconds: a tiny-model job to an SDXL run
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60, 300, 900, 3600)  # seconds from enqueue to start


class WorkerMetrics:
    """The worker's Prometheus registry (its own, not the global one: one per worker, several in one test)."""

    def __init__(self, db: Any, waiting: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        Gauge("headshot_queue_depth", "Studio jobs waiting for a GPU worker (all workers: the jobs table).",
              registry=self.registry).set_function(waiting)
        Gauge("headshot_jobs_running", "Studio jobs running on any worker (the jobs table).",
              registry=self.registry).set_function(lambda: _running(db))
        self.durations = Histogram("headshot_job_duration_seconds", "Time a job ran on this worker, by outcome.",
                                   ["outcome"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.waits = Histogram("headshot_job_wait_seconds", "Time from a job's enqueueing to its start on this worker.",
                               buckets=WAIT_BUCKETS, registry=self.registry)
        self.lost = Counter("headshot_jobs_lost_worker_total",
                            "Jobs whose worker stopped beating, by what this worker's reaper decided.",
                            ["decision"], registry=self.registry)
        self.republished = Counter("headshot_jobs_republished_total",
                                   "Queued jobs whose broker message was lost (a flushed or restarted Redis), sent again.",
                                   registry=self.registry)

    def text(self) -> bytes:
        from prometheus_client import generate_latest
        return generate_latest(self.registry)


def _running(db: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(JobRow).where(JobRow.state == "running")))


def database_answers(db: Any) -> bool:
    try:
        with db.session() as s:
            s.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        log.warning("readiness: database: %s", type(exc).__name__)
        return False


def serve_health(port: int, metrics: WorkerMetrics, ready: Callable[[], bool], host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the health port in a daemon thread; returns the server (`shutdown()` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path == "/healthz":
                self._send(200, json.dumps({"ok": True}).encode(), "application/json")
            elif self.path == "/readyz":
                ok = ready()
                self._send(200 if ok else 503, json.dumps({"ready": ok}).encode(), "application/json")
            elif self.path == "/metrics":
                from prometheus_client import CONTENT_TYPE_LATEST
                self._send(200, metrics.text(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"Not found.", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:  # no access log: a probe's address is nobody's business here
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="worker-health", daemon=True).start()
    return server
