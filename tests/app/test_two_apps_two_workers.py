"""Issue 17's "done when", as visitors meet it: two real `python app.py` replicas and two `python cli.py worker`
processes on one PostgreSQL database, one data directory, one Redis and one master key (tiny model, CPU, one
thread each), every session driven through an app's Gradio protocol over HTTP (tests/app/raw_gradio.py), as a
browser speaks it: page, consent, upload, photo check, "Make my headshots".

What works on whichever replica a request reaches is proven here too (README, "Web replicas"): a private link
made on one replica opens the session, its job and its headshots on the other. What needs sticky sessions is
shown as well: a media link is a grant in the memory of the replica that made it.

The tests run in order on one set of processes, as tests/pipeline/test_workers_on_redis.py does: the kill test
leaves one worker, which the erasure test needs busy.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from studio.jobs import DONE, QUEUED, RUNNING
from tests.app.conftest import ROOT, _free_port, server_environment, stop_server
from tests.app.raw_gradio import Answer, RawBrowser

WORKERS = ("gpu-a", "gpu-b")
STYLE = "corporate_grey"
PHOTO = "obama_1.jpg"
STARTED = re.compile(r"job (\w+) started on (\S+) \(attempt (\d+)\)")
ENDED = re.compile(r"job (\w+) ended on (\S+): (\w+)")
HEADSHOT = re.compile(r"<img src='media/([\w-]+)'")  # a headshot in the gallery (not the ZIP, not a size)
READY = re.compile(r"(1 headshot|Your headshots are) ready\.")  # a queued job's page reads the row, not the run
_addresses = itertools.count(1)


def fresh_address() -> str:
    """A loopback address of its own for each visitor: the per-address limits never mix two visitors."""
    n = next(_addresses)
    return f"127.0.{40 + n // 250}.{1 + n % 250}"


@dataclass
class Process:
    proc: subprocess.Popen
    log: Path
    url: str = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class Deployment:
    """The processes, their logs and the shared database, as an operator's compose file would start them."""

    def __init__(self, env: dict[str, str], logs: Path, database_url: str) -> None:
        self.env, self.logs = env, logs
        self.db = create_engine(database_url)
        self.apps: dict[str, Process] = {}
        self.workers: dict[str, Process] = {}

    def start_app(self, name: str) -> None:
        port = _free_port()
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT, env={**self.env, "GRADIO_SERVER_PORT": str(port)})
        app = self.apps[name] = Process(proc, log, f"http://127.0.0.1:{port}")
        _wait(lambda: _serves(app), 120, f"app {name} to serve", app)

    def start_worker(self, name: str) -> None:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "cli.py", "worker", "--name", name], cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT, env=self.env)
        worker = self.workers[name] = Process(proc, log)
        _wait(lambda: "ready for jobs" in worker.text(), 120, f"worker {name} to start", worker)

    def worker_events(self, pattern: re.Pattern) -> list[tuple[str, ...]]:
        return [m.groups() for w in self.workers.values() for m in pattern.finditer(w.text())]

    def query(self, sql: str, **params) -> list[tuple]:
        with self.db.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def jobs(self) -> dict[str, tuple]:
        """job id -> (session id, state, worker, attempts, fraction): the queue's state in the shared database."""
        rows = self.query("SELECT j.id, j.session_id, j.state, c.worker, c.attempts, c.fraction FROM jobs j "
                          "LEFT JOIN job_claims c ON c.job_id = j.id")
        return {row[0]: row[1:] for row in rows}

    def stop(self) -> None:
        for process in [*self.workers.values(), *self.apps.values()]:
            if process.proc.poll() is None:
                stop_server(process.proc)  # SIGTERM, then SIGKILL after 20 s
        self.db.dispose()


def _serves(app: Process) -> bool:
    try:
        return httpx.get(app.url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(predicate, timeout: float, what: str, process: Process | None = None, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.proc.poll() is not None:
            pytest.fail(f"exited with {process.proc.returncode} while waiting for {what}:\n{process.text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(step)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, redis_server):
    data_dir = tmp_path_factory.mktemp("shared-data")
    logs = tmp_path_factory.mktemp("deployment-logs")
    database_url = postgres_server.create_database()
    env = server_environment(data_dir, 0)  # the app tests' settings: tiny model, CPU, one thread
    env.update({
        "HEADSHOT_DATABASE_URL": database_url,  # one database for every process
        # A Redis database of its own: the queue tests before this module may have left messages in theirs.
        "HEADSHOT_QUEUE_URL": redis_server.url.rsplit("/", 1)[0] + "/7",
        "HEADSHOT_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),  # every process's own copy
        "HEADSHOT_MIN_PHOTOS": "1",  # one photo a visitor: the least screening; one headshot a job (Make asks 1)
        # Enough training steps that a worker can be killed in the middle of them; a killed worker is judged
        # dead after 3 s of silence; a message not acknowledged within 10 min goes to another worker.
        "HEADSHOT_TRAIN_STEPS": "30", "HEADSHOT_WORKER_STALE_SECONDS": "3", "HEADSHOT_JOB_VISIBILITY_SECONDS": "600",
        "HEADSHOT_UPLOAD_GRACE_SECONDS": "120",  # six visitors screen at once on two shared cores
        "MKL_NUM_THREADS": "1",
    })
    deployment = Deployment(env, logs, database_url)
    started = time.monotonic()
    try:
        deployment.start_app("app-a")  # first, alone: it creates the schema and the deployment's keys
        deployment.start_app("app-b")
        for name in WORKERS:
            deployment.start_worker(name)
        print(f"\nstarted 2 apps and 2 workers in {time.monotonic() - started:.1f} s")
        yield deployment
    finally:
        deployment.stop()
        postgres_server.drop_database(database_url)


# --- a visitor -----------------------------------------------------------------------------------------------

@dataclass
class Visit:
    browser: RawBrowser
    code: str  # the private key shown at consent
    replica: str


def visit(deployment: Deployment, replica: str, faces_dir: Path) -> Visit:
    """Open the page on `replica`, consent, upload one photo and see it accepted: ready to press Make."""
    browser = RawBrowser(deployment.apps[replica].url, address=fresh_address(), timeout=300)
    browser.open_page()
    consented = browser.consent()
    assert consented.success, consented.error
    [code] = re.findall(r"data-code='([^']+)'", json.dumps(consented.data).replace('\\"', "'"))
    checked = browser.upload_photos([faces_dir / PHOTO])
    assert checked.success and "data-accepted='true'" in str(checked.data[0]), checked.error or checked.data[0]
    return Visit(browser, code, replica)


def make(v: Visit) -> Answer:
    """Press "Make my headshots" and follow the job to its end, as the page does."""
    return v.browser.call("generate", [[STYLE], 1, None])


def join_make(v: Visit) -> str:
    """Press Make without reading the answer yet; returns the event id."""
    joined = v.browser.join("generate", [[STYLE], 1, None])
    assert joined.status_code == 200, joined.text
    return joined.json()["event_id"]


def join_private(browser: RawBrowser, name: str, data: list) -> str:
    """Join an event the page chains itself (no API name of its own, e.g. "watch" after "attach")."""
    [dep] = [d for d in browser.config["dependencies"] if d.get("api_name") == name]
    joined = browser.http.post("/gradio_api/queue/join", json={
        "data": data, "event_data": None, "fn_index": dep["id"], "trigger_id": None,
        "session_hash": browser.session_hash})
    assert joined.status_code == 200, joined.text
    return joined.json()["event_id"]


class Following:
    """A tab's event stream read in a thread, as the open page reads it, until one event completes."""

    def __init__(self, browser: RawBrowser, event_id: str, timeout: float = 240) -> None:
        self.answers: dict[str, Answer] = {}
        self.reader = threading.Thread(target=lambda: self.answers.update(browser.read_events([event_id], timeout)),
                                       daemon=True)
        self.reader.start()

    def answer(self, timeout: float = 240) -> Answer:
        self.reader.join(timeout)
        return next(iter(self.answers.values()), Answer(False, error="the event did not complete"))


def headshot_bytes(browser: RawBrowser, gallery: str) -> bytes:
    """The first headshot of a gallery, fetched as the page's <img> does (with this browser's cookie)."""
    token = HEADSHOT.findall(gallery)[0]
    response = browser.http.get(f"/media/{token}")
    kind = response.headers.get("content-type", "")
    assert (response.status_code, kind.split("/")[0]) == (200, "image"), (response.status_code, kind)
    return response.content


def the_job_in(deployment: Deployment, state: str) -> str:
    """The id of the one job in `state` (the tests below keep at most one at a time in each state)."""
    _wait(lambda: any(row[1] == state for row in deployment.jobs().values()), 120, f"a job {state}")
    [job_id] = [job for job, row in deployment.jobs().items() if row[1] == state]
    return job_id


# --- the tests, in order -------------------------------------------------------------------------------------

def test_exactly_one_of_the_two_apps_runs_the_retention_scheduler(deployment):
    said = {name: re.findall(r"retention scheduler: (.*)", app.text()) for name, app in deployment.apps.items()}
    assert sorted(said.values()) == [["another process holds the scheduler lock; standing by to take over"],
                                     ["started"]], said
    # The lock itself: one session-level advisory lock held on this database (workers never take it).
    held = deployment.query("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()")
    assert held == [(1,)]


@pytest.fixture(scope="module")
def six_sessions(deployment, faces_dir):
    """Six visitors, three on each app, all pressing Make at about the same time; each follows its own job."""
    replicas = ["app-a", "app-b"] * 3
    started = time.monotonic()
    with ThreadPoolExecutor(len(replicas)) as pool:
        visits = list(pool.map(lambda r: visit(deployment, r, faces_dir), replicas))
        answers = list(pool.map(make, visits))
    print(f"\n6 sessions through 2 apps on 2 workers: {time.monotonic() - started:.1f} s "
          f"(consent, upload and photo check included)")
    yield visits, answers
    for v in visits:
        v.browser.close()


def test_six_sessions_through_both_apps_finish_on_both_workers_each_job_exactly_once(deployment, six_sessions):
    visits, answers = six_sessions
    assert [(a.success, a.error) for a in answers] == [(True, None)] * 6
    assert all(READY.fullmatch(a.data[1]) for a in answers), [a.data[1] for a in answers]  # what each page says
    for v, answer in zip(visits, answers):  # every page shows its own headshot, and it opens from that page
        assert headshot_bytes(v.browser, answer.data[0])
    jobs = deployment.jobs()
    assert len(jobs) == 6 and len({row[0] for row in jobs.values()}) == 6  # one job per session
    assert {(state, attempts) for _, state, _, attempts, _ in jobs.values()} == {(DONE, 1)}  # claimed once each
    started = deployment.worker_events(STARTED)
    assert sorted(job for job, _, _ in started) == sorted(jobs)  # each job started exactly once, on one worker
    assert sorted(job for job, _, state in deployment.worker_events(ENDED) if state == DONE) == sorted(jobs)
    assert {worker for _, worker, _ in started} == set(WORKERS)  # both workers did work
    assert {row[2] for row in jobs.values()} == set(WORKERS)
    # The workers sealed the headshots under the studio's key; the pages watching handed them to their owners.
    held = deployment.query("SELECT count(*) FROM owner_keys WHERE category = 'headshots'")
    master = deployment.query("SELECT count(*) FROM data_keys WHERE category = 'headshots'")
    assert (held, master) == ([(6,)], [(0,)])
    print(f"\nper worker: {[sum(w == name for _, w, _ in started) for name in WORKERS]}")


def test_a_private_link_made_on_one_app_opens_the_session_and_its_headshots_on_the_other(deployment, six_sessions):
    visits, answers = six_sessions
    [(made_on_a, answer)] = [(v, a) for v, a in zip(visits, answers) if v.replica == "app-a"][:1]
    on_a = headshot_bytes(made_on_a.browser, answer.data[0])
    # A media link is a grant in the memory of the replica that made it, for that browser's cookie (also that
    # replica's): on the other replica it opens nothing. This is what the load balancer's sticky cookie is for.
    token = HEADSHOT.findall(answer.data[0])[0]
    cookie = made_on_a.browser.http.cookies.get("hs_client")
    elsewhere = httpx.get(f"{deployment.apps['app-b'].url}/media/{token}", cookies={"hs_client": cookie}, timeout=30)
    assert elsewhere.status_code == 404 and elsewhere.content != on_a
    # Nor does the page's Gradio session: its cookie is signed with a key in A's memory, and its event queue,
    # session hash and state are A's. B refuses the page's next call and asks it to reload.
    fn_index, trigger = made_on_a.browser.endpoint("generate")
    stray = httpx.post(f"{deployment.apps['app-b'].url}/gradio_api/queue/join", cookies={"hs_client": cookie},
                       json={"data": [[STYLE], 1, None], "event_data": None, "fn_index": fn_index,
                             "trigger_id": trigger, "session_hash": made_on_a.browser.session_hash}, timeout=30)
    assert (stray.status_code, stray.json()) == (403, {"detail": "Please reload the studio page."})
    # The private link is not: the key finds the session in the shared database, on any replica.
    back = RawBrowser(deployment.apps["app-b"].url, address=fresh_address(), timeout=120)
    try:
        back.open_page()
        returned = back.call("attach", [made_on_a.code])
        assert returned.success, returned.error
        assert "Welcome back" in str(returned.data[6]) and READY.fullmatch(returned.data[10]), returned.data[10]
        assert headshot_bytes(back, returned.data[9]) == on_a  # the same headshot, opened on app B
    finally:
        back.close()


def test_an_erasure_on_one_app_leaves_nothing_the_other_app_can_serve(deployment, six_sessions):
    visits, answers = six_sessions
    [(open_on_b, answer)] = [(v, a) for v, a in zip(visits, answers) if v.replica == "app-b"][:1]
    token = HEADSHOT.findall(answer.data[0])[0]
    assert open_on_b.browser.http.get(f"/media/{token}").status_code == 200  # B's page shows it, B holds the key
    on_a = RawBrowser(deployment.apps["app-a"].url, address=fresh_address(), timeout=120)
    try:
        on_a.open_page()
        assert on_a.call("attach", [open_on_b.code]).success
        deleted = on_a.delete_now()  # the person deletes everything from another device, which reached app A
        assert deleted.success and "receipt" in str(deleted.data[1]).lower(), deleted.error
    finally:
        on_a.close()
    # The receipt A signed checks against the key either replica publishes: one deployment key, on the shared volume.
    published = {httpx.get(f"{app.url}/receipt-key.pem", timeout=30).content for app in deployment.apps.values()}
    assert len(published) == 1 and b"PUBLIC KEY" in published.pop()
    # B's grant and B's copy of the owner's key outlive the erasure in B's memory, but open nothing: the keys that
    # sealed the headshot are destroyed in the shared database and its blob is gone from the shared volume.
    after = open_on_b.browser.http.get(f"/media/{token}")
    assert after.status_code in (404, 410) and not after.headers.get("content-type", "").startswith("image/")
    again = RawBrowser(deployment.apps["app-b"].url, address=fresh_address(), timeout=120)
    try:
        again.open_page()
        returned = again.call("attach", [open_on_b.code])
        assert returned.success and "was erased on" in str(returned.data[8]), returned.data
    finally:
        again.close()


def test_a_job_made_on_one_app_is_followed_to_its_headshots_on_the_other(deployment, faces_dir):
    maker = visit(deployment, "app-a", faces_dir)
    watcher = RawBrowser(deployment.apps["app-b"].url, address=fresh_address(), timeout=300)
    try:
        asked = Following(maker.browser, join_make(maker))
        job_id = the_job_in(deployment, RUNNING)
        _wait(lambda: 0.05 < (deployment.jobs()[job_id][4] or 0) < 0.5, 120, "training to be under way")
        watcher.open_page()
        returned = watcher.call("attach", [maker.code])  # the private link, opened on app B mid-job
        assert returned.success, returned.error
        assert re.fullmatch(r"[A-Z][\w ]+ · \d+%.*", returned.data[10]), returned.data[10]  # its progress, from B
        [answer] = watcher.read_events([join_private(watcher, "watch", [None])], timeout=240).values()
        assert answer.success, answer.error
        assert READY.fullmatch(answer.data[1]), answer.data[1]
        on_a = asked.answer()  # the page on app A that asked got its answer as well
        assert on_a.success and READY.fullmatch(on_a.data[1]), on_a.error
        assert headshot_bytes(watcher, answer.data[0]) == headshot_bytes(maker.browser, on_a.data[0])
    finally:
        maker.browser.close()
        watcher.close()


def test_a_worker_killed_during_training_leaves_the_job_to_the_other_never_both_never_lost(deployment, faces_dir):
    v = visit(deployment, "app-a", faces_dir)
    try:
        asked = Following(v.browser, join_make(v))
        job_id = the_job_in(deployment, RUNNING)
        _wait(lambda: (deployment.jobs()[job_id][4] or 0) > 0.05, 120, "training to be under way", step=0.05)
        victim = deployment.jobs()[job_id][2]
        deployment.workers[victim].proc.send_signal(signal.SIGKILL)
        deployment.workers[victim].proc.wait(10)
        killed_at = time.monotonic()
        survivor = next(name for name in WORKERS if name != victim)
        answer = asked.answer()
        assert answer.success and READY.fullmatch(answer.data[1]), answer.error  # the page saw it through
        session_id, state, worker, attempts, _ = deployment.jobs()[job_id]
        assert (state, worker, attempts) == (DONE, survivor, 2)  # run again, on the survivor: not interrupted too
        assert [(j, w) for j, w, _ in deployment.worker_events(ENDED) if j == job_id] == [(job_id, survivor)]
        kinds = deployment.query("SELECT kind, count(*) FROM blobs WHERE session_id = :s AND kind IN "
                                 "('headshot', 'adapter', 'report') GROUP BY kind ORDER BY kind", s=session_id)
        assert kinds == [("adapter", 1), ("headshot", 1), ("report", 1)]  # sealed once: the dead attempt's went
        assert headshot_bytes(v.browser, answer.data[0])
        print(f"\nkilled {victim} during training; {survivor} finished the job {time.monotonic() - killed_at:.1f} s "
              "later")
    finally:
        v.browser.close()


def test_a_session_erased_while_its_job_waits_in_line_never_runs(deployment, faces_dir):
    [survivor] = [name for name, w in deployment.workers.items() if w.proc.poll() is None]  # one worker left
    busy, erased = visit(deployment, "app-a", faces_dir), visit(deployment, "app-b", faces_dir)
    elsewhere = RawBrowser(deployment.apps["app-a"].url, address=fresh_address(), timeout=120)
    try:
        busy_page = Following(busy.browser, join_make(busy))
        busy_job = the_job_in(deployment, RUNNING)
        waiting_page = Following(erased.browser, join_make(erased))  # made on app B: it waits behind the busy one
        waiting_job = the_job_in(deployment, QUEUED)
        # The person deletes everything with their private link on app A, not on the replica that took the job.
        elsewhere.open_page()
        assert elsewhere.call("attach", [erased.code]).success
        deleted = elsewhere.delete_now()
        assert deleted.success and "receipt" in str(deleted.data[1]).lower(), deleted.error
        assert waiting_job not in deployment.jobs()  # its row went with the session
        stopped = waiting_page.answer()  # the page on app B that asked is told, in words
        assert stopped.success and stopped.data[1] == "Cancelled. Nothing more was generated.", stopped
        done = busy_page.answer()
        assert done.success and READY.fullmatch(done.data[1]), done.error
        assert deployment.jobs()[busy_job][1] == DONE
        _wait(lambda: f"job {waiting_job} skipped" in deployment.workers[survivor].text(), 60,
              "the erased job's message to be dropped")
        assert waiting_job not in {job for job, _, _ in deployment.worker_events(STARTED)}
    finally:
        for browser in (busy.browser, erased.browser, elsewhere):
            browser.close()


def test_the_residue_audit_is_clean_on_the_shared_storage_and_no_process_logged_a_traceback(deployment):
    audit = subprocess.run([sys.executable, "cli.py", "audit"], cwd=ROOT, env=deployment.env, capture_output=True,
                           text=True, timeout=180)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    for name, process in {**deployment.apps, **deployment.workers}.items():
        assert "Traceback" not in process.text(), f"{name}:\n{process.text()[-3000:]}"
