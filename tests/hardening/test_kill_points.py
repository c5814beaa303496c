"""SIGKILL the real server at each phase of a session, restart it, and check what survived and what did not.

Promise 20: erasures due while the studio was down run at start-up. And a crash must never
leave data nobody can reach (an orphan blob, a key without data, a half-written file) nor
take away data a still-valid session was promised.

Two server lives are each ended by SIGKILL while sessions sit at chosen phases (held there
by `instrumented_app.py`), then a third life checks the result:

    life 1  V done (headshots) · C after consent · T mid-training · E mid-erasure   → SIGKILL
            C's and T's erasure times are moved into the past, as if the studio stayed down past them
    life 2  G mid-generation (adapter sealed) · U mid-upload (blob file written, row not committed) → SIGKILL
    life 3  the start-up sweep has run: look at the database and the vault; `cli.py audit` must be clean
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.hardening.server import StudioServer

PHOTOS = ("obama_1.jpg", "obama_4.jpg")


@dataclass
class Outcome:
    server: StudioServer
    ids: dict[str, str] = field(default_factory=dict)  # role -> session id (read from the database)
    before: dict[str, dict] = field(default_factory=dict)  # role -> what it held before the kill
    after: dict[str, dict] = field(default_factory=dict)  # role -> what it holds after the restart
    audit_returncode: int = -1
    audit_output: str = ""
    erased_blob_ids: list[str] = field(default_factory=list)  # E's sealed blobs, before its delete-now
    erased_files_at_kill: list[str] = field(default_factory=list)  # those whose file was still on disk


def _db(server: StudioServer) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "studio.db", timeout=30)


def _newest_session(server: StudioServer, known: dict[str, str]) -> str:
    with _db(server) as conn:
        rows = conn.execute("SELECT id FROM sessions ORDER BY created_at DESC").fetchall()
    fresh = [r[0] for r in rows if r[0] not in known.values()]
    assert len(fresh) == 1, "exactly one new session expected"
    return fresh[0]


def holdings(server: StudioServer, session_id: str) -> dict:
    with _db(server) as conn:
        session = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        keys = sorted(r[0] for r in conn.execute("SELECT category FROM data_keys WHERE session_id = ?", (session_id,)))
        blobs = conn.execute("SELECT id, kind, digest FROM blobs WHERE session_id = ?", (session_id,)).fetchall()
    vault = server.data_dir / "vault"
    return {"session": session is not None, "keys": keys, "kinds": sorted(kind for _, kind, _ in blobs),
            "blob_ids": sorted(blob_id for blob_id, _, _ in blobs),
            "files": sorted(blob_id for blob_id, _, _ in blobs if (vault / blob_id).exists())}


def _client(server: StudioServer) -> Client:
    return Client(server.url, verbose=False, download_files=False, analytics_enabled=False)


def _consent(server: StudioServer, outcome: Outcome, role: str) -> Client:
    client = _client(server)
    client.predict(True, True, True, api_name="/consent")
    outcome.ids[role] = _newest_session(server, outcome.ids)
    return client


def _upload_args(faces_dir: Path) -> list:
    return [[handle_file(str(faces_dir / name)) for name in PHOTOS]]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory, faces_dir) -> Outcome:
    root = tmp_path_factory.mktemp("kill-points")
    server = StudioServer(data_dir=root / "data", log=root / "server.log", temp_dir=root / "tmp",
                          arm=root / "arm", beacon=root / "beacon", settings={"train_steps": "50"})
    server.arm.write_text("")
    result = Outcome(server)
    try:
        # --- life 1 ---------------------------------------------------------------------------
        server.start()
        v = _consent(server, result, "V")
        v.predict(*_upload_args(faces_dir), api_name="/upload")
        v.predict(["corporate_grey"], 1, api_name="/generate")
        _consent(server, result, "C")
        e = _consent(server, result, "E")
        e.predict(*_upload_args(faces_dir), api_name="/upload")
        result.erased_blob_ids = holdings(server, result.ids["E"])["blob_ids"]
        t = _consent(server, result, "T")
        t.predict(*_upload_args(faces_dir), api_name="/upload")
        server.arm_phases("training", "erasure")
        t.submit(["corporate_grey"], 1, api_name="/generate")
        server.wait_for_phase("training")
        e.submit(api_name="/delete_now")
        server.wait_for_phase("erasure")
        result.before = {role: holdings(server, sid) for role, sid in result.ids.items()}
        result.erased_files_at_kill = [b for b in result.erased_blob_ids if (server.data_dir / "vault" / b).exists()]
        server.kill()
        with _db(server) as conn:  # the studio stayed down past C's and T's erasure time
            conn.executemany("UPDATE sessions SET identity_expires_at = ? WHERE id = ?",
                             [(time.time() - 60, result.ids[r]) for r in ("C", "T")])

        # --- life 2 ---------------------------------------------------------------------------
        server.start()
        g = _consent(server, result, "G")
        g.predict(*_upload_args(faces_dir), api_name="/upload")
        server.arm_phases("generating")
        g.submit(["corporate_grey"], 1, api_name="/generate")
        server.wait_for_phase("generating")
        u = _consent(server, result, "U")
        server.arm_phases("upload")
        u.submit(*_upload_args(faces_dir), api_name="/upload")
        server.wait_for_phase("upload")
        result.before.update({r: holdings(server, result.ids[r]) for r in ("G", "U")})
        server.kill()

        # --- life 3: the start-up sweep has run once /healthz answers ---------------------------
        server.arm.write_text("")
        server.start()
        result.after = {role: holdings(server, sid) for role, sid in result.ids.items()}
        audit = server.cli("audit")
        result.audit_returncode, result.audit_output = audit.returncode, audit.stdout + audit.stderr
    finally:
        server.kill()
    return result


def test_the_server_was_killed_at_every_phase(outcome):
    before = outcome.before
    assert outcome.server.starts == 3
    assert before["C"]["keys"] == [] and before["C"]["session"]  # consented, nothing uploaded yet
    assert "adapter" not in before["T"]["kinds"] and before["T"]["kinds"].count("photo") == 2  # training
    assert "adapter" in before["G"]["kinds"] and "headshot" not in before["G"]["kinds"]  # generating
    # Keys and index rows destroyed together (one transaction), the files not yet removed:
    assert before["E"]["keys"] == [] and before["E"]["blob_ids"] == [] and outcome.erased_files_at_kill


def test_expired_sessions_are_erased_by_the_start_up_sweep(outcome):
    for role in ("C", "T"):
        assert outcome.after[role] == {"session": False, "keys": [], "kinds": [], "blob_ids": [], "files": []}, role
    for blob_id in outcome.before["T"]["blob_ids"]:
        assert not (outcome.server.data_dir / "vault" / blob_id).exists()


def test_an_erasure_interrupted_after_its_keys_went_leaves_nothing_behind(outcome):
    after = outcome.after["E"]
    assert after["keys"] == [] and after["blob_ids"] == [] and after["files"] == []
    assert outcome.erased_blob_ids  # it had photos sealed before its delete-now
    for blob_id in outcome.erased_blob_ids:
        assert not (outcome.server.data_dir / "vault" / blob_id).exists()


def test_an_upload_killed_between_file_and_index_row_leaves_no_orphan(outcome):
    vault = outcome.server.data_dir / "vault"
    with _db(outcome.server) as conn:
        indexed = {r[0] for r in conn.execute("SELECT id FROM blobs")}
    on_disk = {p.name for p in vault.iterdir()}
    assert on_disk == indexed  # no file without a row, no row without a file, no .tmp file


def test_still_valid_sessions_keep_their_data_after_a_crash(outcome):
    assert outcome.after["V"] == outcome.before["V"]
    assert {"photo", "embedding", "adapter", "headshot", "report"} <= set(outcome.after["V"]["kinds"])
    # Killed mid-generation: photos, embeddings and the sealed adapter stay until their own erasure time.
    assert outcome.after["G"] == outcome.before["G"]


def test_residue_audit_is_clean_after_the_crashes(outcome):
    assert outcome.audit_returncode == 0, outcome.audit_output
