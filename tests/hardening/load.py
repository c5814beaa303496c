"""A bounded load run: N concurrent visits through one real server; shared by test_load.py and bench/bench_load.py."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.hardening.journey import Visit, run_visit

NON_GPU_STEPS = ("consent", "upload", "download", "delete")


@dataclass
class LoadReport:
    sessions: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    cross_session_fetches_refused: int = 0
    cross_session_fetches_served: int = 0
    max_concurrent_generations: int = 0
    flood_requests: int = 0
    flood_refused: int = 0

    @property
    def sessions_per_minute(self) -> float:
        return len(self.visits) / self.seconds * 60

    def p95(self, steps=NON_GPU_STEPS) -> float:
        values = sorted(v.timings[s] for v in self.visits for s in steps if s in v.timings)
        return values[min(len(values) - 1, int(0.95 * len(values)))] if values else float("nan")

    def summary(self) -> str:
        return (f"{len(self.visits)}/{self.sessions} sessions in {self.seconds:.1f} s "
                f"({self.sessions_per_minute:.1f}/min), errors {len(self.errors)}, p95 non-GPU step "
                f"{self.p95():.2f} s, peak server RSS {self.peak_rss_mb:.0f} MB, cross-session fetches served "
                f"{self.cross_session_fetches_served}/"
                f"{self.cross_session_fetches_refused + self.cross_session_fetches_served}, "
                f"max concurrent generations {self.max_concurrent_generations}"
                + (f", flooding client: {self.flood_refused}/{self.flood_requests} requests refused"
                   if self.flood_requests else ""))


def run_load(url: str, pid: int, data_dir: Path, photo_sets: list[list[Path]], *, flood: bool = False) -> LoadReport:
    """N visits at once, each from its own address (the server must trust 127.0.0.1 as its proxy); with
    `flood`, a stranger at another address floods the queue without consent for the whole run."""
    report = LoadReport(sessions=len(photo_sets), seconds=0.0)
    process, stop = psutil.Process(pid), threading.Event()
    flooder = threading.Thread(target=_flood, args=(url, stop, report), daemon=True) if flood else None

    def sample():
        while not stop.is_set():
            try:
                rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
            except psutil.Error:
                rss = 0
            report.peak_rss_mb = max(report.peak_rss_mb, rss / 2**20)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if flooder is not None:
        flooder.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(photo_sets)) as pool:
        # Visits are not deleted yet: the cross-session check needs every session's files still there.
        futures = [pool.submit(run_visit, url, photos, delete=False, forwarded_for=f"10.20.{i // 250}.{i % 250 + 1}")
                   for i, photos in enumerate(photo_sets)]
        for future in futures:
            try:
                report.visits.append(future.result(timeout=600))
            except Exception as exc:  # counted, not raised: the report says how many failed
                report.errors.append(f"{type(exc).__name__}: {exc}"[:300])
    report.max_concurrent_generations = _max_overlap(data_dir)
    for visit in report.visits:
        for other in report.visits:
            if other is visit:
                continue
            for u in visit.urls:
                status = httpx.get(u, cookies=other.cookies, timeout=30).status_code
                if status == 200:
                    report.cross_session_fetches_served += 1
                else:
                    report.cross_session_fetches_refused += 1
    for visit in report.visits:
        t0 = time.perf_counter()
        try:
            visit.receipt_html = visit.client.predict(api_name="/delete_now")[0]
        except Exception as exc:
            report.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        visit.timings["delete"] = time.perf_counter() - t0
    report.seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if flooder is not None:
        flooder.join(30)
    return report


def _flood(url: str, stop: threading.Event, report: LoadReport) -> None:
    """A stranger without consent: queue joins for the GPU and for consent, fresh session hashes, as fast as it can."""
    from tests.app.raw_gradio import RawBrowser

    attacker = RawBrowser(url, address="127.0.0.99", timeout=30)
    try:
        attacker.open_page()
        while not stop.is_set():
            attacker.session_hash = secrets.token_hex(5)
            for api_name, data in (("generate", [["corporate_grey"], 1, None]), ("consent", [True, True, True, None])):
                status = attacker.join(api_name, data).status_code
                report.flood_requests += 1
                report.flood_refused += status != 200
    except Exception as exc:  # the flooder's own failure is no result: it is reported
        report.errors.append(f"flooder stopped: {type(exc).__name__}")
    finally:
        attacker.close()


def headshot_digests(visit: Visit) -> set[str]:
    return {hashlib.sha256(h).hexdigest() for h in visit.headshots if not h.startswith(b"PK")}


def _max_overlap(data_dir: Path) -> int:
    """Most training+generation runs in progress at once, from the audit log (start and finish events)."""
    with sqlite3.connect(data_dir / "studio.db") as conn:
        rows = conn.execute("SELECT at, event FROM audit_events WHERE event IN (?, ?, ?) ORDER BY at, id",
                            ("training_started", "headshots_generated", "training_failed")).fetchall()
    running = most = 0
    for _, event in rows:
        running += 1 if event == "training_started" else -1
        most = max(most, running)
    return most
