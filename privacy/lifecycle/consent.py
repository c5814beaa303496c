"""Consent: record the three attestations with the policy version, and refuse anything without them.

The vault checks for a consent record on every `seal`; `require_consent` is the same
check for handlers that do not store anything yet but must not run without consent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from errors import ConsentRequired, SessionGone
from privacy.store.database import ConsentRow, Database, SessionRow


@dataclass(frozen=True)
class Attestations:
    """The statements a person ticks, each separately (none is implied by another)."""

    own_photos: bool  # these are photos of me
    adult: bool       # I am 18 or older
    purpose: bool     # I agree to the processing described in the notice

    @property
    def complete(self) -> bool:
        return self.own_photos and self.adult and self.purpose

    def missing(self) -> list[str]:
        labels = {"own_photos": "that these are photos of you", "adult": "that you are 18 or older",
                  "purpose": "that you agree to the processing described"}
        return [labels[name] for name, given in asdict(self).items() if not given]


@dataclass(frozen=True)
class ConsentRecord:
    session_id: str
    policy_version: str
    given_at: float
    attestations: Attestations


def record_consent(db: Database, session_id: str, attestations: Attestations, policy_version: str,
                   now: float) -> ConsentRecord:
    """Store the consent, or raise ConsentRequired naming what is missing. Re-consenting keeps the first record."""
    if not attestations.complete:
        raise ConsentRequired("Please confirm " + " and ".join(attestations.missing()) + ". Nothing has been stored.")
    with db.session.begin() as s:
        session = s.get(SessionRow, session_id)
        if session is None:
            raise SessionGone()
        existing = s.get(ConsentRow, session_id)
        if existing is None:
            s.add(ConsentRow(session_id=session_id, policy_version=policy_version, given_at=now,
                             own_photos=True, adult=True, purpose=True))
            session.consented_at = now
    return get_consent(db, session_id)  # type: ignore[return-value]


def get_consent(db: Database, session_id: str) -> ConsentRecord | None:
    with db.session() as s:
        row = s.get(ConsentRow, session_id)
        if row is None:
            return None
        return ConsentRecord(row.session_id, row.policy_version, row.given_at,
                             Attestations(row.own_photos, row.adult, row.purpose))


def require_consent(db: Database, session_id: str | None) -> ConsentRecord:
    """Every handler calls this first: no session or no consent → ConsentRequired, nothing done."""
    record = get_consent(db, session_id) if session_id else None
    if record is None:
        raise ConsentRequired()
    return record
