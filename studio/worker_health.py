"""A GPU worker's health, readiness and Prometheus metrics, on a small HTTP port of its own (no personal data).

    GET /healthz   200 while the process serves (a liveness probe: restart the worker when it stops answering)
    GET /readyz    200 once the worker consumes from the broker and its database answers, else 503
    GET /metrics   Prometheus text (studio.line_metrics): queue depth, running jobs, job durations and waits,
                   jobs that lost a worker, lost messages sent again

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

from studio.job_tables import JobRow
from studio.line_metrics import LineMetrics

log = logging.getLogger(__name__)


class WorkerMetrics(LineMetrics):
    """A worker's metrics (studio.line_metrics): the gauges from the shared jobs table, the rest its own jobs'."""

    def __init__(self, db: Any, waiting: Callable[[], int]) -> None:
        super().__init__(waiting, lambda: _running(db))


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


def serve_health(port: int, metrics: WorkerMetrics, ready: Callable[[], bool],
                 host: str = "0.0.0.0") -> ThreadingHTTPServer:
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
