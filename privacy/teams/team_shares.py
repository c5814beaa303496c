"""Shared headshots: what a member gives the team, sealed so only the team's admin opens it, and its erasure.

A share is a copy of one headshot the member chose, sealed to the team's public key
(privacy.teams.team_seal) and stored as a file under DATA_DIR/team-shares named by a random id. The
display name the member typed is sealed to the team too, in the share's row: a name beside a
face is the most identifying thing the team holds, and the server has no need to read it. The
style preset and the dates stay in clear, because they are not personal, and because the
schedule (erasure after the team's retention) and the admin's CSV need them.

Erasure, by the member (`withdraw`), by the schedule (`sweep`) or with the team: the file is
unlinked and the row's personal columns (sealed name, session, member) are emptied in the same
transaction; what is left ("a <style> headshot shared at …, erased at …") is the CSV's
"erased at" line, and goes with the team.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from errors import NotInTeam, ShareGone, ShareRejected, VaultIntegrityError
from privacy.records import audit
from privacy.records.receipts import iso_utc
from privacy.store.database import Database, TeamLookRow, TeamMemberRow, TeamRow, TeamShareRow
from privacy.store.vault import _remove, _write_atomically  # the vault's careful file habits, for the same reasons
from privacy.teams.team_look import style_ids
from privacy.teams.team_seal import IMAGE, NAME, SHARE_MAGIC, open_sealed, seal

SHARE_DIR_NAME = "team-shares"
BY_MEMBER, BY_SCHEDULE, BY_TEAM = "member", "schedule", "team_admin"
MAX_NAME_CHARS = 80
MAX_SHARE_BYTES = 32 * 1024 * 1024  # a 1024 px headshot is well under 2 MB; this bounds what one call can store
DAY = 86400.0
CSV_COLUMNS = ("name", "file", "style", "shared_at", "erased_at")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class SharedHeadshot:
    """One share as the team's admin sees it. `name` is opened with the team's key; `file` is its name in the ZIP."""

    share_id: str
    member_id: str
    name: str
    style_id: str
    shared_at: float
    expires_at: float
    file: str


@dataclass(frozen=True)
class MyShare:
    """One share as its member sees it: enough to withdraw it, nothing sealed."""

    share_id: str
    style_id: str
    shared_at: float
    expires_at: float


def share_dir(data_dir: Path) -> Path:
    return Path(data_dir) / SHARE_DIR_NAME


def checked_display_name(text: str) -> str:
    """The name the team should see, tidied (NFC, single spaces), or ShareRejected saying what is wrong."""
    name = " ".join(unicodedata.normalize("NFC", str(text or "")).split())
    if not name:
        raise ShareRejected("Type the name your team should see with this headshot.", code="share_name_missing")
    # Control characters, and the direction overrides that make a name display as another (Trojan Source);
    # other format characters stay: a zero-width non-joiner belongs in many Persian names.
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") or c in _BIDI_CONTROLS
                                         for c in name):
        raise ShareRejected(f"The name can be at most {MAX_NAME_CHARS} letters, without control characters.",
                            code="share_name_invalid")
    return name


def share(db: Database, blob_dir: Path, now: float, session_id: str, image: bytes, style_id: str,
          display_name: str) -> str:
    """Seal a copy of `image` (and the name) to the member's team; returns the share id. Only the member calls this."""
    name = checked_display_name(display_name)
    if style_id not in style_ids():
        raise ShareRejected("That headshot's style is not one of the studio's presets.", code="share_style")
    if not image or len(image) > MAX_SHARE_BYTES:
        raise ShareRejected("That is not a headshot the studio made: nothing was shared.", code="share_size")
    with db.session() as s:
        member = s.get(TeamMemberRow, session_id)
        if member is None:
            raise NotInTeam()
        team = s.get(TeamRow, member.team_id)
        look = s.get(TeamLookRow, (team.id, team.look_version))
        team_id, public, member_id, version = team.id, team.public_key, member.member_id, team.look_version
        retention_days = look.retention_days
    share_id = secrets.token_hex(16)
    sealed = seal(public, image, team_id, share_id, IMAGE)
    path = Path(blob_dir) / share_id
    try:
        _write_atomically(path, sealed)
        with db.session.begin() as s:
            if s.get(TeamMemberRow, session_id) is None:
                raise NotInTeam()  # the session was erased, or the team deleted, while we sealed
            s.add(TeamShareRow(id=share_id, team_id=team_id, session_id=session_id, member_id=member_id,
                               sealed_name=seal(public, name.encode(), team_id, share_id, NAME), style_id=style_id,
                               look_version=version, size=len(sealed), shared_at=now,
                               expires_at=now + retention_days * DAY))
    except IntegrityError:
        path.unlink(missing_ok=True)
        raise NotInTeam() from None  # the session or the team went between the check and the insert
    except BaseException:
        path.unlink(missing_ok=True)  # never a sealed file without its row
        raise
    return share_id


def my_shares(db: Database, session_id: str) -> list[MyShare]:
    with db.session() as s:
        rows = s.scalars(select(TeamShareRow).where(TeamShareRow.session_id == session_id,
                                                    TeamShareRow.erased_at.is_(None))
                         .order_by(TeamShareRow.shared_at, TeamShareRow.id))
        return [MyShare(r.id, r.style_id, r.shared_at, r.expires_at) for r in rows]


def withdraw(db: Database, blob_dir: Path, now: float, session_id: str, share_id: str) -> None:
    """Erase the team's copy at once: file unlinked and row emptied before this returns. Only its member can."""
    with db.session.begin() as s:
        row = s.get(TeamShareRow, share_id)
        # Another session's share is refused exactly like a missing one: a share id tells nobody else anything.
        if row is None or row.session_id != session_id or row.erased_at is not None:
            raise ShareGone()
        _erase(row, blob_dir, now, BY_MEMBER)
    db.flush_erased_pages()


def withdraw_all(db: Database, blob_dir: Path, now: float, session_id: str) -> int:
    """Withdraw every share of a session (its owner's delete-now); returns how many."""
    with db.session.begin() as s:
        rows = list(s.scalars(select(TeamShareRow).where(TeamShareRow.session_id == session_id,
                                                         TeamShareRow.erased_at.is_(None))))
        for row in rows:
            _erase(row, blob_dir, now, BY_MEMBER)
    if rows:
        db.flush_erased_pages()
    return len(rows)


def sweep(db: Database, blob_dir: Path, now: float, keep_records_seconds: float) -> int:
    """Erase every share past its team's retention; drop erased lines older than the audit period. Returns erased."""
    per_team: Counter[str] = Counter()
    with db.session.begin() as s:
        due = list(s.scalars(select(TeamShareRow).where(TeamShareRow.expires_at <= now,
                                                        TeamShareRow.erased_at.is_(None))))
        for row in due:
            per_team[row.team_id] += 1
            _erase(row, blob_dir, now, BY_SCHEDULE)
        for row in s.scalars(select(TeamShareRow).where(TeamShareRow.erased_at < now - keep_records_seconds)):
            s.delete(row)
        audit_ids = dict(s.execute(select(TeamRow.id, TeamRow.audit_id).where(TeamRow.id.in_(per_team))).all())
    for team_id, count in sorted(per_team.items()):
        audit.record_event(db, audit_ids[team_id], audit.TEAM_SHARE_ERASED, now, by=BY_SCHEDULE, count=count)
    return len(due)


def recover(db: Database, blob_dir: Path, unindexed_before: float) -> int:
    """Remove share files that no live share row names (a crash between writing and committing, or during erasure)."""
    if not Path(blob_dir).is_dir():
        return 0
    with db.session() as s:
        live = set(s.scalars(select(TeamShareRow.id).where(TeamShareRow.erased_at.is_(None))))
    return sum(_remove(path) for path in Path(blob_dir).iterdir()
               if path.is_file() and path.name not in live and path.stat().st_mtime < unindexed_before)


# --- the admin's view: every function takes the team's private key, which only the admin key unwraps ----------
def team_shares(db: Database, team_id: str, private: X25519PrivateKey) -> list[SharedHeadshot]:
    """The team's live shares, per member (by name), oldest first within each."""
    with db.session() as s:
        rows = list(s.scalars(select(TeamShareRow).where(TeamShareRow.team_id == team_id,
                                                         TeamShareRow.erased_at.is_(None))))
    shares = []
    for row in rows:
        name = _open(private, row.sealed_name, team_id, row.id, NAME).decode()
        shares.append(SharedHeadshot(row.id, row.member_id, name, row.style_id, row.shared_at, row.expires_at,
                                     _file_name(name, row.style_id, row.id)))
    return sorted(shares, key=lambda h: (h.name.casefold(), h.member_id, h.shared_at, h.share_id))


def live_share_ids(db: Database, team_id: str) -> list[str]:
    """The ids of the team's live shares, nothing opened: enough to tell whether they changed (the admin's timer)."""
    with db.session() as s:
        return sorted(s.scalars(select(TeamShareRow.id).where(TeamShareRow.team_id == team_id,
                                                               TeamShareRow.erased_at.is_(None))))


def open_share(db: Database, blob_dir: Path, team_id: str, private: X25519PrivateKey, share_id: str) -> bytes:
    with db.session() as s:
        row = s.get(TeamShareRow, share_id)
        if row is None or row.team_id != team_id or row.erased_at is not None:
            raise ShareGone()
    try:
        sealed = (Path(blob_dir) / share_id).read_bytes()
    except FileNotFoundError:
        raise ShareGone() from None
    return _open(private, sealed, team_id, share_id, IMAGE)


def zip_of_shares(db: Database, blob_dir: Path, team_id: str, private: X25519PrivateKey,
                  share_ids: Iterable[str] | None = None) -> bytes:
    """Every live share in one ZIP, each under its CSV file name; built in memory, never written to disk.

    `share_ids` (the admin's favourites) keeps only those: ids of no live share of this team are ignored.
    """
    wanted = None if share_ids is None else set(share_ids)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # images are compressed already
        for shared in team_shares(db, team_id, private):
            if wanted is not None and shared.share_id not in wanted:
                continue
            try:
                data = open_share(db, blob_dir, team_id, private, shared.share_id)
            except ShareGone:
                continue  # withdrawn while the ZIP was being made: the member's choice wins
            archive.writestr(zipfile.ZipInfo(shared.file, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def csv_of_shares(db: Database, team_id: str, private: X25519PrivateKey) -> str:
    """name, file, style, shared_at, erased_at: live shares, then erased ones (no name, no file: nothing personal)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for shared in team_shares(db, team_id, private):
        writer.writerow([_cell(c) for c in (shared.name, shared.file, shared.style_id, iso_utc(shared.shared_at), "")])
    with db.session() as s:
        erased = list(s.scalars(select(TeamShareRow).where(TeamShareRow.team_id == team_id,
                                                           TeamShareRow.erased_at.is_not(None))
                                .order_by(TeamShareRow.erased_at, TeamShareRow.id)))
    for row in erased:
        writer.writerow([_cell(c) for c in ("", "", row.style_id, iso_utc(row.shared_at), iso_utc(row.erased_at))])
    return out.getvalue()


def _erase(row: TeamShareRow, blob_dir: Path, now: float, by: str) -> None:
    # The file first, inside the transaction: if the commit then fails, the row still says "live" and
    # points at no file, which the next sweep or a retry settles; the other order could leave a
    # readable copy with no row left to find it by.
    _remove(Path(blob_dir) / row.id)
    row.sealed_name = None
    row.session_id = None
    row.member_id = None
    row.size = None
    row.erased_at = now
    row.erased_by = by


def _open(private: X25519PrivateKey, sealed: bytes, team_id: str, share_id: str, part: str) -> bytes:
    try:
        return open_sealed(private, sealed, team_id, share_id, part)
    except Exception:  # InvalidTag, or a malformed encapsulation: either way not this team's intact share
        raise VaultIntegrityError("A shared headshot failed to open with its team's key: tampered or corrupted.") \
            from None


def _file_name(name: str, style_id: str, share_id: str) -> str:
    """ASCII, no separators: safe in any ZIP tool and file system, and still recognisably the person's."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-")[:40] or "member"
    return f"{slug}_{style_id}_{share_id[:8]}.jpg"


def _cell(text: str) -> str:
    """A cell a spreadsheet reads as text: one that does not start with a letter or a digit gets a leading quote.

    A name such as "=HYPERLINK(…)" would run as a formula (CSV injection). Listing the dangerous first characters
    ("=", "+", "-", "@", tab, CR) missed their look-alikes that spreadsheets also accept or strip: a zero-width
    space before "=", a fullwidth "＝" (issue 28). So the rule is the other way round: only a letter or a digit
    may lead unquoted.
    """
    return text if not text or text[0].isalnum() else "'" + text


def sealed_file_ok(head: bytes) -> bool:
    """Whether a file under the share folder is in the sealed format (the residue audit's check)."""
    return head.startswith(SHARE_MAGIC)


def digest_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
