"""A server killed in the middle of training: the job is shown as interrupted, its owner resumes it with their key,
and the session of an owner who never comes back is erased on its schedule exactly as if nothing had happened.

    life 1  T is training (held there by instrumented_app.py), N waits in line behind it  → SIGKILL
            while the studio is down, N's identity-data erasure time passes
    life 2  the start-up sweep erased N; T's owner opens their link in a new browser, sees
            "interrupted", presses Resume, and gets their headshots
"""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from tests.app.raw_gradio import RawBrowser
from tests.hardening.server import StudioServer

PHOTOS = ("obama_1.jpg", "obama_4.jpg")


def code_of(consent_answer) -> str:
    match = re.search(r"data-code='([0-9A-Z-]+)'", str(consent_answer.data))
    assert match, consent_answer
    return match.group(1)


def owner_with_photos(server: StudioServer, faces_dir, address: str) -> tuple[RawBrowser, str]:
    browser = RawBrowser(server.url, address=address)
    browser.open_page()
    code = code_of(browser.consent())
    assert browser.upload_photos([faces_dir / n for n in PHOTOS]).success
    return browser, code


def jobs(server: StudioServer) -> dict[str, str]:
    with sqlite3.connect(server.data_dir / "studio.db", timeout=30) as db:
        return dict(db.execute("SELECT session_id, state FROM jobs"))


def session_row(server: StudioServer, session_id: str):
    with sqlite3.connect(server.data_dir / "studio.db", timeout=30) as db:
        return db.execute("SELECT identity_expires_at, identity_erased_at FROM sessions WHERE id = ?",
                          (session_id,)).fetchone()


def wait_for(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError


@pytest.fixture(scope="module")
def restarted(tmp_path_factory, faces_dir):
    root = tmp_path_factory.mktemp("restart-resume")
    server = StudioServer(data_dir=root / "data", log=root / "server.log", temp_dir=root / "tmp",
                          arm=root / "arm", beacon=root / "beacon", settings={"train_steps": "30"})
    server.arm.write_text("")
    try:
        server.start()
        trainee, trainee_code = owner_with_photos(server, faces_dir, "127.0.9.1")
        waiter, waiter_code = owner_with_photos(server, faces_dir, "127.0.9.2")
        server.arm_phases("training")
        assert trainee.join("generate", [["corporate_grey"], 1, None]).status_code == 200
        server.wait_for_phase("training")
        assert waiter.join("generate", [["corporate_grey"], 1, None]).status_code == 200
        before = wait_for(lambda: (lambda j: j if sorted(j.values()) == ["queued", "running"] else None)(jobs(server)))
        trainee_id = next(sid for sid, state in before.items() if state == "running")
        waiter_id = next(sid for sid, state in before.items() if state == "queued")
        trainee_expiry = session_row(server, trainee_id)[0]
        server.kill()
        for browser in (trainee, waiter):
            browser.close()
        with sqlite3.connect(server.data_dir / "studio.db") as db:  # the studio stays down past N's erasure time
            db.execute("UPDATE sessions SET identity_expires_at = ? WHERE id = ?", (time.time() - 60, waiter_id))

        server.start()
        yield {"server": server, "before": before, "after": jobs(server), "trainee_id": trainee_id,
               "waiter_id": waiter_id, "trainee_code": trainee_code, "waiter_code": waiter_code,
               "trainee_expiry": trainee_expiry}
    finally:
        server.kill()


def test_a_restart_marks_the_running_job_interrupted(restarted):
    assert restarted["before"][restarted["trainee_id"]] == "running"
    assert restarted["after"][restarted["trainee_id"]] == "interrupted"


def test_the_owner_comes_back_with_their_key_sees_interrupted_and_resumes_to_a_gallery(restarted):
    server = restarted["server"]
    elsewhere = RawBrowser(server.url, address="127.0.9.3")  # a new browser: nothing but the key
    elsewhere.open_page()
    opened = elsewhere.call("attach", [restarted["trainee_code"]])
    assert opened.success and "Welcome back" in str(opened.data)
    assert "restarted while making your headshots" in opened.data[10]  # the status, in words
    assert session_row(server, restarted["trainee_id"])[0] == restarted["trainee_expiry"]  # its clock did not move

    resumed = elsewhere.call("resume", [None])
    assert resumed.success and resumed.data == [["corporate_grey"], 1]  # the styles and count it had
    made = elsewhere.call("resume_job", [None])  # what the page's Resume runs next: the job as it was
    assert made.success, made.error
    assert made.data[0].count("hs-shot") == 1 and "1 headshot ready" in made.data[1]
    assert jobs(server)[restarted["trainee_id"]] == "done"
    elsewhere.close()


def test_an_owner_who_never_returns_is_erased_on_schedule_across_the_restart(restarted):
    """The start-up sweep did what the schedule would have done: identity data due, no headshots, so all of it."""
    server = restarted["server"]
    assert session_row(server, restarted["waiter_id"]) is None
    with sqlite3.connect(server.data_dir / "studio.db") as db:
        left = [db.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?",
                           (restarted["waiter_id"],)).fetchone()[0]
                for table in ("blobs", "data_keys", "owner_keys", "jobs", "consents")]
    assert left == [0, 0, 0, 0, 0]
    visitor = RawBrowser(server.url, address="127.0.9.4")
    visitor.open_page()
    answer = visitor.call("attach", [restarted["waiter_code"]])
    visitor.close()
    assert answer.success and "The data of this session was erased on" in answer.data[8]
