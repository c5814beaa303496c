"""Teams: one brand look for a company, invite links, and an admin who sees only what members chose to share.

    operator        Teams.create(name)              -> NewTeam: the admin key, shown once, never stored
    admin           Teams.admin(admin key)          -> TeamAdmin: look, invites, shares, ZIP, CSV, delete
    member          Teams.peek(invite)              -> InvitePeek: the team's name and retention, before consent
                    Teams.redeem(session, invite)   -> Membership (a row that goes with the session)
                    Teams.start_run(session, run)   -> the look version that run is locked to
                    Teams.share / withdraw          -> privacy.teams.team_shares

Every admin act starts from the admin key: it finds the team by its locator and unwraps the
team's private key (privacy.teams.team_seal), so a TeamAdmin exists only for whoever holds the key,
and it can reach shares and nothing else of a member: no route from it leads to a session's
photos, screening, model or unshared headshots, because none of those is keyed by a team.

Deleting the team erases everything of it at once: its row goes with the wrapped private key in
it (after which no share can ever be opened, from any copy), and every team row cascades with it;
then the share files are unlinked. A signed receipt, like a person's, records what went.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from errors import (
    InviteExpired,
    InviteRefused,
    InviteRevoked,
    InviteUnknown,
    InviteUsedUp,
    SessionGone,
    TeamKeyRefused,
    TeamSettingRejected,
)
from privacy.records import audit
from privacy.records.notice import policy_version
from privacy.records.receipts import Receipt, ReceiptSigner, iso_utc
from privacy.store.database import (
    Database,
    ErasureRow,
    SessionRow,
    TeamInviteRow,
    TeamLookRow,
    TeamMemberRow,
    TeamRow,
    TeamRunRow,
    TeamShareRow,
)
from privacy.store.private_dirs import ensure_private_dir
from privacy.store.return_keys import parse_bearer_key
from privacy.teams import team_shares
from privacy.teams.team_look import TeamLook, checked_look, default_look
from privacy.teams.team_seal import AdminKey, InviteToken, new_team_keys, unwrap_private_key

if TYPE_CHECKING:  # a type only: teams sit below the lifecycle that erases sessions
    from privacy.lifecycle.erasure import ErasureContext

log = logging.getLogger(__name__)

Clock = Callable[[], float]
MAX_TEAM_NAME = 120
MAX_LABEL = 80
MAX_INVITE_USES = 1000
MAX_INVITE_SECONDS = 90 * 86400.0  # an invite link lives at most as long as a shared headshot may
TEAM_CATEGORY = "team"
# Control, format (bidi overrides, zero-width), surrogate, private-use and unassigned code points.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


@dataclass(frozen=True)
class NewTeam:
    team_id: str
    name: str
    admin_key: AdminKey  # shown to the operator once; the studio keeps no copy

    def admin_link(self, base_url: str) -> str:
        return self.admin_key.link(base_url)


@dataclass(frozen=True)
class NewInvite:
    invite_id: str
    token: InviteToken  # shown to the admin once; the studio keeps its locator only
    label: str
    expires_at: float
    max_uses: int

    def link(self, base_url: str) -> str:
        return self.token.link(base_url)


@dataclass(frozen=True)
class Invite:
    """An invite as the admin lists it: never its token."""

    invite_id: str
    label: str
    created_at: float
    expires_at: float
    max_uses: int
    uses: int
    revoked_at: float | None

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "used up" if self.uses >= self.max_uses else "open"


@dataclass(frozen=True)
class InvitePeek:
    """What an invite link tells its holder before consent, and nothing more: not members, not other invites."""

    team_name: str
    retention_days: int  # how long the team keeps a shared headshot (the team's current look)


@dataclass(frozen=True)
class Membership:
    team_id: str
    team_name: str
    member_id: str
    look: TeamLook  # the team's current look (a run locks the version it starts with: Teams.start_run)


class Teams:
    """The team side of the studio: creation, admin access, invites, membership, looks of runs, shares."""

    def __init__(self, db: Database, blob_dir: Path, signer: ReceiptSigner, policy: str, clock: Clock = time.time):
        self.db = db
        self.blob_dir = Path(blob_dir)
        self.signer = signer
        self.policy_version = policy
        self.clock = clock
        ensure_private_dir(self.blob_dir)

    @classmethod
    def from_context(cls, ctx: ErasureContext) -> "Teams":
        return cls(ctx.db, team_shares.share_dir(ctx.settings.data_dir), ctx.signer, policy_version(ctx.settings),
                   ctx.clock)

    # --- the operator ---------------------------------------------------------------------
    def create(self, name: str, look: TeamLook | None = None) -> NewTeam:
        """A new team with its key pair and first look; the admin key in the result is the only copy."""
        name = " ".join(str(name or "").split())
        if not name or len(name) > MAX_TEAM_NAME:
            raise TeamSettingRejected(f"A team needs a name of 1 to {MAX_TEAM_NAME} characters.", code="team_name")
        if any(unicodedata.category(c) in _INVISIBLE for c in name):
            # Every member reads this name in their notice: a control or bidi character could disguise it.
            raise TeamSettingRejected("A team name can hold letters, digits, spaces and punctuation, but no control "
                                      "or invisible characters.", code="team_name")
        look = look or default_look()
        team_id, admin_key, now = secrets.token_hex(16), AdminKey.new(), self.clock()
        keys = new_team_keys(team_id, admin_key)
        audit_id = secrets.token_hex(8)
        with self.db.session.begin() as s:
            s.add(TeamRow(id=team_id, audit_id=audit_id, name=name, admin_locator=admin_key.locator,
                          public_key=keys.public, wrapped_private_key=keys.wrapped, look_version=1, created_at=now))
            s.flush()  # the team row before its look's foreign key
            s.add(_look_row(team_id, 1, look, now))
        audit.record_event(self.db, audit_id, audit.TEAM_CREATED, now)
        log.info("team %s created", audit_id)
        return NewTeam(team_id, name, admin_key)

    # --- the admin ------------------------------------------------------------------------
    def admin(self, admin_key: AdminKey | str | None) -> "TeamAdmin":
        """The admin's handle, or TeamKeyRefused: for a key (or a pasted link or code) that opens no team."""
        key = admin_key if isinstance(admin_key, AdminKey) else parse_bearer_key(admin_key, AdminKey)
        if key is None:
            raise TeamKeyRefused()
        with self.db.session() as s:
            team = s.scalars(select(TeamRow).where(TeamRow.admin_locator == key.locator)).first()
            if team is None:
                raise TeamKeyRefused()
            private = unwrap_private_key(team.id, team.wrapped_private_key, key)
        if private is None:  # a locator that matches but a key that does not unwrap: a tampered row
            raise TeamKeyRefused()
        return TeamAdmin(self, team.id, team.name, team.audit_id, key, private)

    def deletion_receipt(self, admin_key: AdminKey) -> Receipt | None:
        """The receipt of a team already deleted with this admin key (a repeated delete), or None."""
        with self.db.session() as s:
            row = s.scalars(select(ErasureRow).where(ErasureRow.session_digest == _team_digest(admin_key))).first()
            return Receipt.from_json(row.receipt.encode(), repeated=True) if row and row.receipt else None

    # --- members --------------------------------------------------------------------------
    def peek(self, invite: InviteToken | str | None) -> InvitePeek:
        """The team an invite would join and its retention, so the notice can name them before consent; or
        InviteRefused saying why the link cannot be used. A read only: it spends no use and records nothing."""
        token = invite if isinstance(invite, InviteToken) else (
            parse_bearer_key(invite, InviteToken) if isinstance(invite, str) else None)
        if token is None:
            raise InviteUnknown()
        now = self.clock()
        with self.db.session() as s:
            row = s.scalars(select(TeamInviteRow).where(TeamInviteRow.locator == token.locator)).first()
            if row is None or row.revoked_at is not None or row.expires_at <= now or row.uses >= row.max_uses:
                raise _why_refused(row, now)
            team = s.get(TeamRow, row.team_id)
            look = s.get(TeamLookRow, (team.id, team.look_version))
            return InvitePeek(team.name, look.retention_days)

    def redeem(self, session_id: str, invite: InviteToken | str | None) -> Membership:
        """Join the session to the invite's team, counting one use atomically; or refuse, saying why in words.

        The use is counted by one conditional UPDATE (`uses < max_uses`, not revoked, not expired) as
        the transaction's first write: the database serialises concurrent redemptions on the row, so a
        1-use invite redeemed by many at once lets exactly one in (SQLite and PostgreSQL alike).
        """
        token = invite if isinstance(invite, InviteToken) else parse_bearer_key(invite, InviteToken)
        if token is None:
            raise InviteUnknown()
        now = self.clock()
        with self.db.session() as s:
            if s.get(SessionRow, session_id) is None:
                raise SessionGone()
            current = s.get(TeamMemberRow, session_id)
            row = s.scalars(select(TeamInviteRow).where(TeamInviteRow.locator == token.locator)).first()
            if row is None:
                raise InviteUnknown()
            if current is not None:
                if current.team_id == row.team_id:
                    return self._membership(s, current)  # opened twice: already in, no use spent
                raise InviteRefused("This session already belongs to another team. Start a new session to join "
                                    "this one.", code="already_in_team")
            invite_id, team_id = row.id, row.team_id
        try:
            with self.db.session.begin() as s:
                counted = s.execute(update(TeamInviteRow).where(
                    TeamInviteRow.id == invite_id, TeamInviteRow.uses < TeamInviteRow.max_uses,
                    TeamInviteRow.revoked_at.is_(None), TeamInviteRow.expires_at > now,
                ).values(uses=TeamInviteRow.uses + 1)).rowcount
                if counted != 1:
                    raise _why_refused(s.get(TeamInviteRow, invite_id), now)
                team = s.get(TeamRow, team_id)
                member = TeamMemberRow(session_id=session_id, team_id=team_id, member_id=secrets.token_hex(8),
                                       look_version=team.look_version, joined_at=now)
                s.add(member)
                s.flush()
                membership = self._membership(s, member)
        except IntegrityError:
            # The same session redeemed twice at once, or the session or team was erased meanwhile: the
            # rollback returned the use.
            with self.db.session() as s:
                current = s.get(TeamMemberRow, session_id)
                if current is not None:
                    return self._membership(s, current)
                raise (SessionGone() if s.get(SessionRow, session_id) is None else InviteUnknown()) from None
        audit.record_event(self.db, team.audit_id, audit.TEAM_MEMBER_JOINED, now)
        return membership

    def membership(self, session_id: str) -> Membership | None:
        with self.db.session() as s:
            row = s.get(TeamMemberRow, session_id)
            return self._membership(s, row) if row is not None else None

    def start_run(self, session_id: str, run_id: str) -> TeamLook | None:
        """Lock a member's new run to the team's current look, and record which version; None outside a team."""
        with self.db.session.begin() as s:
            member = s.get(TeamMemberRow, session_id)
            if member is None:
                return None
            team = s.get(TeamRow, member.team_id)
            s.add(TeamRunRow(run_id=run_id, session_id=session_id, team_id=team.id, look_version=team.look_version,
                             started_at=self.clock()))
            return _look(s.get(TeamLookRow, (team.id, team.look_version)))

    def look_of_run(self, run_id: str) -> TeamLook | None:
        """The look a run started with, whatever the team's look is now."""
        with self.db.session() as s:
            run = s.get(TeamRunRow, run_id)
            return _look(s.get(TeamLookRow, (run.team_id, run.look_version))) if run is not None else None

    def share(self, session_id: str, image: bytes, style_id: str, display_name: str) -> str:
        team = self.membership(session_id)
        share_id = team_shares.share(self.db, self.blob_dir, self.clock(), session_id, image, style_id, display_name)
        self._audit(team.team_id if team else None, audit.TEAM_SHARED)
        return share_id

    def withdraw(self, session_id: str, share_id: str) -> None:
        team = self.membership(session_id)
        team_shares.withdraw(self.db, self.blob_dir, self.clock(), session_id, share_id)
        self._audit(team.team_id if team else None, audit.TEAM_SHARE_ERASED, by=team_shares.BY_MEMBER, count=1)

    def withdraw_all(self, session_id: str) -> int:
        """Every share of a session, withdrawn: for its owner's delete-now, before the session itself goes."""
        return team_shares.withdraw_all(self.db, self.blob_dir, self.clock(), session_id)

    def my_shares(self, session_id: str) -> list[team_shares.MyShare]:
        return team_shares.my_shares(self.db, session_id)

    # --- internals ------------------------------------------------------------------------
    def _membership(self, s, row: TeamMemberRow) -> Membership:
        team = s.get(TeamRow, row.team_id)
        return Membership(team.id, team.name, row.member_id, _look(s.get(TeamLookRow, (team.id, team.look_version))))

    def _audit(self, team_id: str | None, event: str, **details) -> None:
        with self.db.session() as s:
            team = s.get(TeamRow, team_id) if team_id else None
            audit_id = team.audit_id if team else None
        if audit_id:
            audit.record_event(self.db, audit_id, event, self.clock(), **details)


class TeamAdmin:
    """What the holder of a team's admin key can do. Made only by Teams.admin, from the key."""

    def __init__(self, teams: Teams, team_id: str, name: str, audit_id: str, key: AdminKey, private):
        self._teams, self.team_id, self.name, self._audit_id = teams, team_id, name, audit_id
        self._key, self._private = key, private

    def __repr__(self) -> str:  # never show key material
        return f"TeamAdmin(team={self._audit_id})"

    @property
    def _db(self) -> Database:
        return self._teams.db

    def _team(self, s) -> TeamRow:
        team = s.get(TeamRow, self.team_id)
        if team is None:  # deleted since this handle was made
            raise TeamKeyRefused()
        return team

    # --- look -----------------------------------------------------------------------------
    def look(self) -> TeamLook:
        with self._db.session() as s:
            team = self._team(s)
            return _look(s.get(TeamLookRow, (team.id, team.look_version)))

    def looks(self) -> list[TeamLook]:
        with self._db.session() as s:
            self._team(s)
            return [_look(r) for r in s.scalars(select(TeamLookRow).where(TeamLookRow.team_id == self.team_id)
                                                .order_by(TeamLookRow.version))]

    def set_look(self, style_id: str, background: str, outfits, size: int, retention_days: int) -> TeamLook:
        """A new version of the look, for runs from now on. A shorter retention also shortens existing shares."""
        look = checked_look(style_id, background, outfits, size, retention_days)
        now = self._teams.clock()
        with self._db.session.begin() as s:
            team = self._team(s)
            team.look_version += 1
            s.add(_look_row(team.id, team.look_version, look, now))
            # Data minimisation: a promise shortened applies to what is already held; a longer one does not.
            for row in s.scalars(select(TeamShareRow).where(TeamShareRow.team_id == team.id,
                                                            TeamShareRow.erased_at.is_(None))):
                row.expires_at = min(row.expires_at, row.shared_at + retention_days * team_shares.DAY)
            version = team.look_version
        return _look(_look_row(self.team_id, version, look, now))

    # --- invites --------------------------------------------------------------------------
    def make_invite(self, label: str, expires_in_seconds: float, max_uses: int) -> NewInvite:
        label = " ".join(str(label or "").split())
        if not label or len(label) > MAX_LABEL:
            raise TeamSettingRejected(f"Give the invite a label of 1 to {MAX_LABEL} characters.", code="invite_label")
        if isinstance(max_uses, bool) or not isinstance(max_uses, int) or not 1 <= max_uses <= MAX_INVITE_USES:
            raise TeamSettingRejected(f"An invite can be used from 1 to {MAX_INVITE_USES} times.", code="invite_uses")
        if not 0 < float(expires_in_seconds) <= MAX_INVITE_SECONDS:
            raise TeamSettingRejected("An invite can last from a moment to 90 days.", code="invite_expiry")
        token, now = InviteToken.new(), self._teams.clock()
        invite = NewInvite(secrets.token_hex(8), token, label, now + float(expires_in_seconds), max_uses)
        with self._db.session.begin() as s:
            self._team(s)
            s.add(TeamInviteRow(id=invite.invite_id, team_id=self.team_id, locator=token.locator, label=label,
                                created_at=now, expires_at=invite.expires_at, max_uses=max_uses, uses=0))
        return invite

    def invites(self) -> list[Invite]:
        with self._db.session() as s:
            self._team(s)
            rows = s.scalars(select(TeamInviteRow).where(TeamInviteRow.team_id == self.team_id)
                             .order_by(TeamInviteRow.created_at, TeamInviteRow.id))
            return [Invite(r.id, r.label, r.created_at, r.expires_at, r.max_uses, r.uses, r.revoked_at) for r in rows]

    def revoke_invite(self, invite_id: str) -> None:
        with self._db.session.begin() as s:
            self._team(s)
            row = s.get(TeamInviteRow, invite_id)
            if row is None or row.team_id != self.team_id:
                raise InviteUnknown("There is no such invite in this team.")
            if row.revoked_at is None:
                row.revoked_at = self._teams.clock()

    def members(self) -> int:
        with self._db.session() as s:
            self._team(s)
            return s.scalar(select(func.count()).select_from(TeamMemberRow)
                            .where(TeamMemberRow.team_id == self.team_id))

    # --- shares: what members chose to give, and nothing else -----------------------------------
    def shares(self) -> list[team_shares.SharedHeadshot]:
        self.look()  # the team must still exist
        return team_shares.team_shares(self._db, self.team_id, self._private)

    def changes(self) -> str:
        """A short digest of what the admin's view lists (live shares, members), nothing decrypted: it changes
        when a member shares, withdraws or joins, so an open admin page redraws only then (web.team_handlers)."""
        seen = f"{self.members()}|{','.join(team_shares.live_share_ids(self._db, self.team_id))}"
        return hashlib.sha256(seen.encode()).hexdigest()[:16]

    def shares_by_member(self) -> dict[str, list[team_shares.SharedHeadshot]]:
        """The shares grouped per member (member id: a pseudonym of the membership, never the session id)."""
        grouped: dict[str, list[team_shares.SharedHeadshot]] = {}
        for shared in self.shares():
            grouped.setdefault(shared.member_id, []).append(shared)
        return grouped

    def open_share(self, share_id: str) -> bytes:
        self.look()
        return team_shares.open_share(self._db, self._teams.blob_dir, self.team_id, self._private, share_id)

    def zip_of_shares(self, share_ids: list[str] | None = None) -> bytes:
        """Every share in a ZIP, or only `share_ids` (the admin's favourites) among them."""
        self.look()
        return team_shares.zip_of_shares(self._db, self._teams.blob_dir, self.team_id, self._private, share_ids)

    def csv_of_shares(self) -> str:
        self.look()
        return team_shares.csv_of_shares(self._db, self.team_id, self._private)

    # --- the end ----------------------------------------------------------------------------
    def delete_team(self) -> Receipt:
        """Erase everything of the team at once and return a signed receipt. A repeat returns the same receipt."""
        teams, now = self._teams, self._teams.clock()
        try:
            with self._db.session.begin() as s:
                # Lock the team row before listing its shares, so that no share commits between the list
                # and the delete and leaves its file behind: the UPDATE takes SQLite's write lock, and FOR
                # UPDATE waits on PostgreSQL for a share being inserted (its foreign key holds KEY SHARE).
                s.execute(update(TeamRow).where(TeamRow.id == self.team_id).values(look_version=TeamRow.look_version))
                if s.scalars(select(TeamRow.id).where(TeamRow.id == self.team_id).with_for_update()).first() is None:
                    raise _AlreadyDeleted()
                counts = {name: s.scalar(select(func.count()).select_from(table).where(table.team_id == self.team_id))
                          for name, table in (("invites", TeamInviteRow), ("memberships", TeamMemberRow))}
                files = [teams.blob_dir / share_id for share_id in s.scalars(select(TeamShareRow.id).where(
                    TeamShareRow.team_id == self.team_id, TeamShareRow.erased_at.is_(None)))]
                receipt = self._receipt(files, counts, now)
                s.add(ErasureRow(audit_id=self._audit_id, erased_at=now, by=team_shares.BY_TEAM,
                                 receipt_digest=receipt.digest, session_digest=_team_digest(self._key),
                                 receipt=receipt.to_json().decode()))
                # The wrapped private key goes with the team row: from this commit on, no copy of any share
                # opens, whoever holds the admin key. Looks, invites, memberships, runs, shares cascade.
                s.execute(delete(TeamRow).where(TeamRow.id == self.team_id))
        except (_AlreadyDeleted, IntegrityError):
            repeated = teams.deletion_receipt(self._key)  # deleted before, or by a concurrent call: its record stands
            if repeated is None:
                raise TeamKeyRefused() from None
            return repeated
        for path in files:
            path.unlink(missing_ok=True)
        audit.record_event(self._db, self._audit_id, audit.ERASED, now, by=team_shares.BY_TEAM,
                           categories=TEAM_CATEGORY)
        self._db.flush_erased_pages()
        log.info("team %s deleted: %d shares", self._audit_id, len(files))
        return receipt

    def _receipt(self, files: list[Path], counts: dict[str, int], now: float) -> Receipt:
        digests = sorted(d for d in map(team_shares.digest_of, files) if d)
        return self._teams.signer.sign({
            "receipt_id": secrets.token_hex(16),
            "audit_id": self._audit_id,
            "erased_at": iso_utc(now),
            "by": team_shares.BY_TEAM,
            "policy_version": self._teams.policy_version,
            "categories": {TEAM_CATEGORY: {
                "shared_headshot": {"count": len(digests), "bytes": sum(f.stat().st_size for f in files if f.exists()),
                                    "sha256": digests},
                **{name: {"count": count} for name, count in counts.items()}}},
            "keys_destroyed": 1,  # the team's private key, wrapped by the admin key
            "earlier": {},
            "identity_data_stored": False,  # a team never holds photos, face measurements or models
        })


class _AlreadyDeleted(Exception):
    pass


def _why_refused(row: TeamInviteRow | None, now: float) -> InviteRefused:
    if row is None:
        return InviteUnknown()
    if row.revoked_at is not None:
        return InviteRevoked()
    if row.expires_at <= now:
        return InviteExpired()
    return InviteUsedUp()


def _team_digest(key: AdminKey) -> str:
    # Finds a deleted team's receipt from its admin key, without keeping the key's locator after deletion.
    return hashlib.sha256(b"erased-team|" + key.locator.encode()).hexdigest()


def _look_row(team_id: str, version: int, look: TeamLook, now: float) -> TeamLookRow:
    return TeamLookRow(team_id=team_id, version=version, style_id=look.style_id, background=look.background,
                       outfits=json.dumps(list(look.outfits)), size=look.size, retention_days=look.retention_days,
                       created_at=now)


def _look(row: TeamLookRow) -> TeamLook:
    return TeamLook(row.style_id, row.background, tuple(json.loads(row.outfits)), row.size, row.retention_days,
                    row.version)
