"""The audit log: append-only events about a session, keyed by its pseudonym, holding counts — never content.

An event is a name from `EVENTS` plus a few details, each an int, a bool or a short
enum-like word (`by="schedule"`, `categories="identity,headshots"`, `error="RuntimeError"`).
Anything that could carry personal data is refused before it reaches the database
(promise 19): free text, file names, paths, IP addresses, embeddings, bytes. A client IP
is stored only through the explicit `client_ip=` argument and only when the operator
turned `log_client_ip` on. The log is kept for the audit period, then purged.
"""

from __future__ import annotations

import ipaddress
import json
import re

from sqlalchemy import delete, select

from privacy.store.database import AuditEventRow, Database

CONSENT_GIVEN = "consent_given"
PHOTOS_SCREENED = "photos_screened"          # accepted=, rejected=
TRAINING_STARTED = "training_started"        # photos=
TRAINING_FINISHED = "training_finished"
TRAINING_FAILED = "training_failed"          # error=<exception class name>
HEADSHOTS_GENERATED = "headshots_generated"  # count=, held_back=
DATA_EXPORTED = "data_exported"              # headshots=, adapter=
ERASED = "erased"                            # by="user"|"schedule"|"team_admin", categories="identity,headshots"|"team"
# Photos and face measurements were sealed in the vault (once per set sealed): what lets a deletion
# receipt say whether identity data was ever stored, after the blobs themselves are gone.
IDENTITY_SEALED = "identity_sealed"          # photos=
GENERATION_FAILED = "generation_failed"      # error=<exception class name>, instant=True (nothing is trained)
# Team events are keyed by the team's own pseudonym (privacy.teams.teams), never by a member's.
TEAM_CREATED = "team_created"
TEAM_MEMBER_JOINED = "team_member_joined"
TEAM_SHARED = "team_shared"
TEAM_SHARE_ERASED = "team_share_erased"      # by="member"|"schedule", count=
EVENTS = frozenset({CONSENT_GIVEN, PHOTOS_SCREENED, TRAINING_STARTED, TRAINING_FINISHED, TRAINING_FAILED,
                    HEADSHOTS_GENERATED, DATA_EXPORTED, ERASED, IDENTITY_SEALED, GENERATION_FAILED,
                    TEAM_CREATED, TEAM_MEMBER_JOINED, TEAM_SHARED, TEAM_SHARE_ERASED})

# Audit ids are the vault's `secrets.token_hex(8)`: refusing anything else stops a session id
# (a bearer secret, url-safe base64) from ever being written here by mistake.
_AUDIT_ID = re.compile(r"[0-9a-f]{8,32}")
_DETAIL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A word, or a comma-separated list of words: no dots, slashes, spaces or '@', so no file
# name, path, address, e-mail or sentence fits, and 40 characters leave no room for data.
_DETAIL_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(,[A-Za-z][A-Za-z0-9_]*)*")
_MAX_WORD = 40
_MAX_DETAILS = 8


def record_event(db: Database, audit_id: str, event: str, now: float, *, client_ip: str | None = None,
                 log_client_ip: bool = False, **details: int | str | bool) -> None:
    """Append one event, or raise ValueError if the event or a detail could carry personal data."""
    if not _AUDIT_ID.fullmatch(audit_id):
        raise ValueError("audit events are keyed by the pseudonymous audit id, never by a session id")
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; allowed: {sorted(EVENTS)}")
    if len(details) > _MAX_DETAILS:
        raise ValueError("too many details for one audit event")
    for name, value in details.items():
        _check_detail(name, value)
    if client_ip is not None and log_client_ip:
        details["client_ip"] = str(ipaddress.ip_address(client_ip))  # validated: an address, nothing else
    with db.session.begin() as s:
        s.add(AuditEventRow(audit_id=audit_id, at=float(now), event=event,
                            detail=json.dumps(details, sort_keys=True)))


def events_for(db: Database, audit_id: str) -> list[dict]:
    """The events of one pseudonymous session, oldest first: [{"event", "at", "detail"}]."""
    with db.session() as s:
        rows = s.scalars(select(AuditEventRow).where(AuditEventRow.audit_id == audit_id)
                         .order_by(AuditEventRow.at, AuditEventRow.id))
        return [{"event": r.event, "at": r.at, "detail": json.loads(r.detail)} for r in rows]


def purge_old_events(db: Database, now: float, keep_seconds: float) -> int:
    """Delete events older than the audit period; returns how many were deleted."""
    with db.session.begin() as s:
        return s.execute(delete(AuditEventRow).where(AuditEventRow.at < now - keep_seconds)).rowcount


def _check_detail(name: str, value: object) -> None:
    if not _DETAIL_NAME.fullmatch(name):
        raise ValueError(f"audit detail name {name!r} is not a short lower-case word")
    if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, bool)):
        return
    if isinstance(value, str) and len(value) <= _MAX_WORD and _DETAIL_WORD.fullmatch(value):
        return
    # The value itself is deliberately left out of the message: it may be the very data refused.
    raise ValueError(f"audit detail {name!r} must be an int, a bool or a short word; refused a {type(value).__name__}")
