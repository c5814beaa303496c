"""The operator key: the one credential that creates teams from the web page; the server keeps a verifier only.

    python cli.py operator-link            mint a key (replacing any earlier one) and print its link, once
    python cli.py operator-link --revoke   forget the verifier: no operator link opens anything any more

It is a `BearerKey` like a team's admin key (privacy.teams.team_seal) and a person's return key
(privacy.store.return_keys): 128 random bits in the link's fragment, which browsers never send to a
server, and of which the database keeps only an HKDF derivation under a label of its own (the
verifier), so neither a copy of the database nor a look at it lets anyone act as the operator.

One key at a time: minting replaces the row, so an old link stops working the moment a new one is
made. With no row, there is no operator: every key presented is refused with the words a wrong
key gets, so a guesser cannot even tell whether an operator key exists. The comparison is
constant-time (`hmac.compare_digest`) against the one stored verifier, or a dummy when there is
none, so the time an answer takes says nothing about how close a guess came.

What the key opens is deliberately small: creating a team, whose admin link is shown once. It
reaches no session, photo, headshot, share or team's content (web.operator_handlers).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import delete

from errors import OperatorKeyRefused
from privacy.store.database import Database, OperatorKeyRow
from privacy.store.return_keys import BearerKey, parse_bearer_key

ROW_ID = "operator"
_NO_VERIFIER = "0" * 64  # compared against when no key is minted, so that case takes the same time


@dataclass(frozen=True, repr=False)
class OperatorKey(BearerKey):
    """The operator's key: proven by its verifier; its labels differ from every other key's (no key serves two)."""

    LOCATOR_LABEL = b"headshot-studio/operator/verifier/v1"
    CHECK_LABEL = b"headshot-studio/operator/check"
    LINK_PARAM = "operator"


class OperatorKeys:
    """Mint, check and revoke the operator key, against the verifier row in the database."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db, self.clock = db, clock

    def mint(self) -> OperatorKey:
        """A new key, replacing any earlier one in the same transaction; the result is the only copy."""
        key = OperatorKey.new()
        with self.db.session.begin() as s:
            s.execute(delete(OperatorKeyRow))
            s.add(OperatorKeyRow(id=ROW_ID, verifier=key.locator, created_at=self.clock()))
        return key

    def revoke(self) -> bool:
        """Forget the verifier; True if there was one. Pages holding the old key are refused from their next act."""
        with self.db.session.begin() as s:
            return bool(s.execute(delete(OperatorKeyRow)).rowcount)

    def minted(self) -> bool:
        with self.db.session() as s:
            return s.get(OperatorKeyRow, ROW_ID) is not None

    def check(self, presented: OperatorKey | str | None) -> OperatorKey:
        """The key, if it is the operator's; else OperatorKeyRefused (the same words for every kind of wrong)."""
        if isinstance(presented, OperatorKey):
            key = presented
        else:  # whatever a caller sent: only text can be a key
            key = parse_bearer_key(presented, OperatorKey) if isinstance(presented, str) else None
        with self.db.session() as s:
            row = s.get(OperatorKeyRow, ROW_ID)
            stored = row.verifier if row is not None else _NO_VERIFIER
        candidate = key.locator if key is not None else "1" * 64  # never equal to a stored hex verifier or the dummy
        if not hmac.compare_digest(candidate, stored) or row is None or key is None:
            raise OperatorKeyRefused()
        return key
