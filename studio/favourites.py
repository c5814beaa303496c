"""A session's favourite headshots, sealed with the headshots so that they come back with the private key.

The starred headshots' ids are one sealed blob of kind "favourites" in the headshots category
(privacy.store.vault.CATEGORY_OF_KIND): under the same data key as the headshots, so once they are made only
the owner's key opens it, and every erasure of the headshots (delete-now, the schedule) crypto-shreds it too.
Each change seals the whole set again and then discards the earlier blob; an empty set leaves no blob at all.

Only ids of this session's kept headshots are stored, each once, in gallery order: an id that names none of
them (another session's, a photo's, a made-up one) is left out, never an error, as "Download favourites" does.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from errors import UserError
from privacy.lifecycle.consent import require_consent

if TYPE_CHECKING:
    from studio.service import Studio

KIND = "favourites"
# Bounds on what a page may send (the page sends the starred ids as one comma-separated text): a blob id is 32 hex
# characters, and no session keeps more headshots than this in practice (runs × styles × per style).
MAX_FAVOURITES = 500
MAX_ID_CHARS = 64
MAX_TEXT_CHARS = MAX_FAVOURITES * (MAX_ID_CHARS + 1)


class TooManyFavourites(UserError):
    code = "too_many_favourites"
    default_message = (f"At most {MAX_FAVOURITES} headshots can be favourites. Unstar some first; "
                       "nothing was changed.")


def parse_ids(text: Any) -> list[str]:
    """The ids a page sent as one comma-separated text, bounded; anything that is not such a text is refused."""
    if text is None:
        return []
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        raise TooManyFavourites()
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if len(ids) > MAX_FAVOURITES:
        raise TooManyFavourites()
    return [i for i in ids if len(i) <= MAX_ID_CHARS]


class Favourites:
    """Read and replace the sealed set of a session's favourite headshots (a part of `Studio`)."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio

    def of(self, session_id: str, owner_key: bytes | None = None) -> list[str]:
        """The session's favourite headshot ids (empty when none were starred). Needs the owner's key once the
        headshots are theirs (OwnerKeyRequired otherwise), like the headshots themselves."""
        require_consent(self.studio.db, session_id)
        vault = self.studio.vault
        sealed = vault.blobs(session_id, KIND)
        if not sealed:
            return []
        stored = {ref.id for ref in vault.blobs(session_id, "headshot")}
        return [i for i in json.loads(vault.open(session_id, sealed[-1].id, owner_key=owner_key)) if i in stored]

    def choose(self, session_id: str, blob_ids: list[str], owner_key: bytes | None = None) -> list[str]:
        """Make `blob_ids` (those that name a kept headshot of this session) the session's favourites; returns
        them in gallery order. Ordered with erasure by the session's lock: an erasure that comes first leaves
        nothing to seal into (SessionGone), one that comes after finds this set and shreds it."""
        if len(blob_ids) > MAX_FAVOURITES:
            raise TooManyFavourites()
        require_consent(self.studio.db, session_id)
        wanted = set(blob_ids)
        with self.studio.erasure.lock_for(session_id):
            chosen = [shot.blob_id for shot in self.studio.headshots(session_id, owner_key) if shot.blob_id in wanted]
            vault = self.studio.vault
            earlier = [ref.id for ref in vault.blobs(session_id, KIND)]
            if chosen:
                vault.seal(session_id, KIND, json.dumps(chosen).encode(), owner_key=owner_key)
            vault.discard(session_id, earlier)
        return chosen
