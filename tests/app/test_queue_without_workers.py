"""Issue 28, queue mode without a live worker, as a visitor meets it: a real `python app.py` replica and
`python cli.py worker` processes on PostgreSQL and Redis (tiny model, CPU). Every worker is killed in the middle of
a job: the app replica itself marks the job within one reap interval (no worker is left to do it), the page that
asked gets lasting words saying what happened and what to do (never an error toast that vanishes and leaves a bare
"Error"), a page opened now says so too and that no GPU worker is connected, and "Resume" finishes the job once a
worker is back.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import signal
import time

import pytest

from studio.jobs import INTERRUPTED, QUEUED, RUNNING
from tests.app.raw_gradio import RawBrowser
from tests.app.test_two_apps_two_workers import READY, Deployment, Following, _wait, join_make, join_private, visit

# A killed worker is judged dead after 8 s of silence: shorter, a live worker's heartbeat thread starved for CPU on
# a loaded two-core machine (loading the model, training) reads as dead too, and its job is taken from it.
STALE_SECONDS = 8
CHECK_SECONDS = STALE_SECONDS / 3  # each reaper looks every third of the stale time (studio.reaper)


@pytest.fixture
def deployment(tmp_path_factory, postgres_server, redis_server):
    from tests.app.conftest import server_environment
    data_dir = tmp_path_factory.mktemp("shared-data")
    logs = tmp_path_factory.mktemp("deployment-logs")
    database_url = postgres_server.create_database()
    env = server_environment(data_dir, 0)
    env.update({
        "HEADSHOT_DATABASE_URL": database_url,
        "HEADSHOT_QUEUE_URL": redis_server.url.rsplit("/", 1)[0] + "/8",  # a Redis database of its own
        "HEADSHOT_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "HEADSHOT_MIN_PHOTOS": "1",
        "HEADSHOT_WORKER_STALE_SECONDS": str(STALE_SECONDS),
        "HEADSHOT_JOB_ATTEMPTS": "1",  # one start: a dead worker's job is interrupted, for its owner to resume
        "HEADSHOT_JOB_VISIBILITY_SECONDS": "600",
        "HEADSHOT_UPLOAD_GRACE_SECONDS": "120",
        "MKL_NUM_THREADS": "1",
    })
    deployment = Deployment(env, logs, database_url)
    try:
        deployment.start_app("app-a")
        yield deployment
    finally:
        deployment.stop()
        postgres_server.drop_database(database_url)


def status_on_a_fresh_page(deployment: Deployment, code: str, address: str) -> str:
    """The session's job in words, as a page that opens the private link now shows it."""
    page = RawBrowser(deployment.apps["app-a"].url, address=address, timeout=60)
    try:
        page.open_page()
        answer = page.call("attach", [code])
        assert answer.success, answer.error
        return str(answer.data[10])
    finally:
        page.close()


def test_every_worker_killed_mid_job_the_app_marks_it_the_page_says_so_and_resume_finishes_it(deployment,
                                                                                                 faces_dir):
    # The first worker trains long enough to be killed in the middle; the one that comes back trains briefly.
    deployment.env["HEADSHOT_TRAIN_STEPS"] = "5000"
    deployment.start_worker("gpu-a")
    v = visit(deployment, "app-a", faces_dir)
    try:
        asked = Following(v.browser, join_make(v), timeout=300)
        _wait(lambda: any(state == RUNNING and (fraction or 0) > 0.001 for _, state, _, _, fraction
                          in deployment.jobs().values()), 180, "training to be under way")
        [job_id] = deployment.jobs()
        deployment.workers["gpu-a"].proc.send_signal(signal.SIGKILL)  # every worker gone
        killed = time.monotonic()
        _wait(lambda: deployment.jobs()[job_id][1] == INTERRUPTED, 60, "the job to be marked")
        took = time.monotonic() - killed
        # Judged dead after the stale time, decided at the app replica's next check: no worker was left to do it.
        assert took <= STALE_SECONDS + CHECK_SECONDS + 3.0, f"marked {took:.1f} s after the kill"
        assert "lost its worker: interrupted" in deployment.apps["app-a"].text()

        # The page that asked: lasting words in its status, with what to do; not an error.
        answer = asked.answer(60)
        assert answer.success, answer.error
        status = answer.data[1]
        assert "GPU worker stopped" in status and "Resume" in status and "photos are still here" in status
        # A page opened now says the same, and that no worker is connected (the count is read every few seconds).
        _wait(lambda: "No GPU worker is connected" in status_on_a_fresh_page(deployment, v.code, "127.0.50.1"),
              30, "the page to say no worker is connected", step=1.0)
        assert "single GPU" not in json.dumps(v.browser.config)  # queue mode: the GPUs are the workers'

        # Resume, with no worker yet: the job waits in line, and the page says why nothing moves.
        resumed = Following(v.browser, join_private(v.browser, "resume_job", [None]), timeout=300)
        _wait(lambda: any(state == QUEUED for _, state, _, _, _ in deployment.jobs().values()), 30, "the resume")
        waiting = status_on_a_fresh_page(deployment, v.code, "127.0.50.2")
        assert "No GPU worker is connected right now" in waiting and "1st of 1 in line" in waiting, waiting

        deployment.env["HEADSHOT_TRAIN_STEPS"] = "2"
        deployment.start_worker("gpu-b")  # a worker returns: the resumed job runs on it, to the end
        done = resumed.answer(300)
        logs = "\n".join(p.text()[-1500:] for p in (*deployment.workers.values(), deployment.apps["app-a"]))
        assert done.success and READY.fullmatch(done.data[1]), (done.error or done.data[1]) + "\n" + logs
        assert re.search(r"job \w+ ended on gpu-b: done", deployment.workers["gpu-b"].text())
        print(f"\nevery worker killed: the app marked the job {took:.1f} s later (stale {STALE_SECONDS} s)")
    finally:
        v.browser.close()
