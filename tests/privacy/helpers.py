"""Test helpers for the privacy layer: a movable clock and a studio-like data root with sessions in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from privacy.lifecycle import retention
from privacy.lifecycle.consent import Attestations, record_consent
from privacy.lifecycle.erasure import ErasureContext
from privacy.records.notice import policy_version
from privacy.records.receipts import load_receipt_signer
from privacy.store.database import Database
from privacy.store.vault import Vault
from settings import Settings, load_settings

T0 = 1_700_000_000.0  # a fixed start time: 2023-11-14T22:13:20Z
HOUR = 3600.0
DAY = 86400.0
MARKER = b"ERASE-ME-MARKER-7f3a9c"  # planted in uploads; must never be found in plaintext


class FakeClock:
    """A clock that moves only when told to: tests advance time instead of sleeping."""

    def __init__(self, start: float = T0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Env:
    settings: Settings
    db: Database
    vault: Vault
    ctx: ErasureContext
    clock: FakeClock
    policy: retention.RetentionPolicy

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.db.dispose()


def make_env(data_dir: Path, clock: FakeClock | None = None, **overrides: str) -> Env:
    """A data root with database, vault (fixed test master key) and erasure context on a fake clock."""
    environ = {"HEADSHOT_DATA_DIR": str(data_dir), **{f"HEADSHOT_{k.upper()}": v for k, v in overrides.items()}}
    settings = load_settings(environ)
    clock = clock or FakeClock()
    db = Database(settings.database)
    vault = Vault(db, settings.blob_dir, b"m" * 32, clock)
    ctx = ErasureContext(db=db, vault=vault, signer=load_receipt_signer(settings), settings=settings, clock=clock)
    return Env(settings, db, vault, ctx, clock, retention.RetentionPolicy.from_settings(settings))


def fake_jpeg(marker: bytes = MARKER, size: int = 2048) -> bytes:
    """Bytes that look like a JPEG to any signature scan and carry a findable marker."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + marker + bytes(size)


def consented_session(env: Env, *, photos: int = 3, adapter: bool = True) -> str:
    """A session with consent (retention clock started) and sealed identity data."""
    session_id = env.vault.new_session()
    now = env.clock()
    record_consent(env.db, session_id, Attestations(True, True, True), policy_version(env.settings), now)
    retention.on_consent(env.db, session_id, now, env.policy)
    for i in range(photos):
        env.vault.seal(session_id, "photo", fake_jpeg(MARKER + bytes([i])))
        env.vault.seal(session_id, "embedding", b"[0.1, 0.2, 0.3]")
    if adapter:
        env.vault.seal(session_id, "adapter", b"adapter weights " + MARKER)
    return session_id


def generate(env: Env, session_id: str, *, headshots: int = 2) -> None:
    """Seal headshots and a report as the studio does after generation, and start their retention."""
    for i in range(headshots):
        env.vault.seal(session_id, "headshot", b"\x89PNG\r\n\x1a\n" + bytes([i]) * 64)
    env.vault.seal(session_id, "report", b'[{"kept": true}]')
    retention.on_generated(env.db, session_id, env.clock(), env.policy)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())
