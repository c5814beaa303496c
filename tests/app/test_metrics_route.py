"""The app's /metrics (HEADSHOT_METRICS, on by default): Prometheus text that follows the GPU line and names nobody."""

from __future__ import annotations

import sqlite3
import time

import httpx
from gradio_client import Client, handle_file
from prometheus_client.parser import text_string_to_metric_families

DONE = ("headshot_job_duration_seconds_count", (("outcome", "done"),))


def scrape(server) -> tuple[dict[tuple[str, tuple], float], bytes]:
    response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    return ({(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}, response.content)


def test_the_apps_metrics_count_a_finished_job_and_hold_no_session_job_or_address(server, faces_dir):
    before, _ = scrape(server)
    assert {"headshot_queue_depth", "headshot_jobs_running", "headshot_jobs_interrupted_total"} <= {
        name for name, _ in before}
    client = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        client.predict(True, True, True, api_name="/consent")
        client.predict([handle_file(str(faces_dir / n)) for n in ("obama_1.jpg", "obama_4.jpg")], api_name="/upload")
        _, status, _ = client.predict(["corporate_grey"], 1, api_name="/generate")
        assert "ready" in status.lower()
    finally:
        client.close()
    deadline = time.monotonic() + 10
    while (after := scrape(server))[0].get(DONE, 0) < before.get(DONE, 0) + 1:  # a scrape is up to 1 s old
        assert time.monotonic() < deadline, "the finished job was not counted"
        time.sleep(0.3)
    seen, body = after
    assert seen[DONE] == before.get(DONE, 0) + 1
    assert seen[("headshot_job_wait_seconds_count", ())] == before.get(("headshot_job_wait_seconds_count", ()), 0) + 1
    assert seen[("headshot_queue_depth", ())] == 0 and seen[("headshot_jobs_running", ())] == 0

    with sqlite3.connect(server.data_dir / "studio.db") as db:  # every id the studio holds, and every address
        secrets = [row[0] for table, column in (("sessions", "id"), ("sessions", "audit_id"), ("jobs", "id"))
                   for row in db.execute(f"SELECT {column} FROM {table}")]
    assert secrets  # the job's session and its job are there to look for
    for secret in [*secrets, "127.0.0.1", "obama", "corporate_grey"]:
        assert secret.encode() not in body, secret


def test_metrics_can_be_switched_off(tmp_path):
    import os

    from settings import apply_privacy_environment, load_settings
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    environ.update(HEADSHOT_DATA_DIR=str(tmp_path / "data"), HEADSHOT_BASE_MODEL="tiny-sd", HEADSHOT_DEVICE="cpu")
    apply_privacy_environment(environ)
    import app
    assert load_settings(environ).metrics  # on unless switched off
    off = app.build_app(load_settings({**environ, "HEADSHOT_METRICS": "false"}))
    assert "/metrics" not in {getattr(route, "path", None) for route in off.routes}


def test_a_flood_of_scrapes_is_answered_from_the_cache_and_the_studio_keeps_answering(server):
    import threading

    def client(address: str) -> httpx.Client:  # a loopback address of its own: its own share of the limits
        return httpx.Client(base_url=server.url, timeout=10, transport=httpx.HTTPTransport(local_address=address))

    statuses: list[int] = []
    health: list[float] = []
    stop = threading.Event()

    def flood() -> None:
        with client("127.0.0.97") as http:
            for _ in range(40):
                statuses.append(http.get("/metrics").status_code)

    def probe() -> None:
        with client("127.0.0.98") as http:
            while not stop.is_set():
                started = time.monotonic()
                assert http.get("/healthz").status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    flooders = [threading.Thread(target=flood) for _ in range(6)]
    for thread in flooders:
        thread.start()
    for thread in flooders:
        thread.join(120)
    stop.set()
    prober.join(10)
    assert statuses == [200] * 240  # a page route, like /healthz: answered, from a cache a second old at most
    assert health and max(health) < 2.0, max(health)
