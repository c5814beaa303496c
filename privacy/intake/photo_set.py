"""A person's photo set while they shape it: add photos, remove one, replace one, without sending the rest again.

The vault holds a session's photos all-or-nothing: the accepted photos of a set that passes
every check, sealed together, or nothing (privacy.intake.screening decides; studio.service seals).
Between those two states, while a set is still short of photos or has a stranger in it, the
person's screened photos wait here, **in memory only**, so that they can fix the one photo
that is wrong instead of uploading all of them again:

    PhotoDrafts.get / put      the set being edited, per session (LRU, bounded, with a lifetime)
    forget_session             an erasure hook: delete-now and the identity schedule drop it at once

A draft lives at most `ttl_seconds` after its last edit and at most `capacity` drafts, holding at most
`max_photos` photos together, are held. The drafts are shared by everyone, so each network address (the
`holder` of its sessions' drafts) holds at most its share of them: past its share, its own least recently
edited draft goes; when the whole store is full, the least recently edited draft of the address holding the
most goes (issue 28: 33 one-photo sets from one address silently pushed out another person's photos). A person
whose draft went is told so in words at their next step (`dropped`), and sees their sealed set again if there
is one (rebuilt from the vault), or starts the set again. Nothing here is ever written to disk. Each photo gets
a random id so that the page can name "this photo" across edits.
"""

from __future__ import annotations

import io
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable

from PIL import Image

from privacy.intake.ingest import CleanPhoto
from privacy.intake.screening import FileVerdict

PREVIEW_PX = 160  # long side of the owner's thumbnails
# ~5 MB of pixels per photo at the stored size (1536 px): 32 drafts of 20 photos stay under ~3.5 GB in the
# worst case, and a draft is only held while someone is between an incomplete set and a sealed one.
DRAFT_CAPACITY = 32
# A draft may hold up to twice the most photos (refused ones count, and a screened one keeps its pixels), so 32
# drafts alone could hold 32 x 40 photos (~7 GB), twice the bound above, from one address within its upload limits
# (tests/app/test_photo_set_attacks.py). The photos held in all drafts together are bounded too: 32 x 20.
DRAFT_PHOTOS_HELD = DRAFT_CAPACITY * 20
DRAFT_TTL_SECONDS = 30 * 60
# One address's share of the drafts and of their photos: an eighth per person behind it (HEADSHOT_PEOPLE_PER_ADDRESS),
# never more than half, as web.boundary.fair_share.share_of shares the boundary's pools (this layer cannot import it).
HOLDER_SHARE = 1 / 8
DROPPED_WORDS = ("Photos you added earlier, before your set was complete, are no longer held: unfinished sets wait "
                 "only in the studio's memory, for at most 30 minutes, and room had to be made for others. Nothing of "
                 "them was stored. Please add them again.")


def new_photo_id() -> str:
    return "p" + secrets.token_hex(6)


def preview_jpeg(photo: CleanPhoto) -> bytes:
    """A small JPEG of a cleaned picture, made in memory: no metadata, nothing of the original file."""
    img = Image.fromarray(photo.pixels)
    img.thumbnail((PREVIEW_PX, PREVIEW_PX))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=70)
    return out.getvalue()


@dataclass(frozen=True, eq=False)
class DraftPhoto:
    """One photo of a set being edited: its own verdict, its thumbnail, and its stored form once encoded."""

    verdict: FileVerdict  # carries the photo's id
    png: bytes | None = None  # the sealed form (encoded once; re-sealing a set does not encode again)

    @property
    def id(self) -> str:
        return self.verdict.photo_id


@dataclass(frozen=True)
class PhotoDraft:
    photos: tuple[DraftPhoto, ...]
    sealed_ids: tuple[str, ...] = ()  # the ids the vault holds now, in order ("" = nothing sealed)

    def with_photos(self, photos: list[DraftPhoto]) -> "PhotoDraft":
        return replace(self, photos=tuple(photos))


def _share(pool: int, people: int) -> int:
    return max(1, min(max(1, math.ceil(pool * HOLDER_SHARE)) * max(1, people), pool // 2))


class PhotoDrafts:
    def __init__(self, capacity: int = DRAFT_CAPACITY, ttl_seconds: float = DRAFT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic, max_photos: int = DRAFT_PHOTOS_HELD,
                 people: int = 1) -> None:
        self._drafts: OrderedDict[str, tuple[float, PhotoDraft, str | None]] = OrderedDict()  # (edited, draft, holder)
        self._capacity, self._ttl, self._clock, self._max_photos = capacity, ttl_seconds, clock, max_photos
        self.drafts_per_holder, self.photos_per_holder = _share(capacity, people), _share(max_photos, people)
        self._photos = 0  # held in all drafts together
        self._held: dict[str | None, list[int]] = {}  # holder -> [drafts, photos]
        self._dropped: OrderedDict[str, None] = OrderedDict()  # sessions whose draft went, until they are told
        self._lock = threading.Lock()

    def get(self, session_id: str) -> PhotoDraft | None:
        with self._lock:
            self._expire()
            held = self._drafts.get(session_id)
            return held[1] if held is not None else None

    def put(self, session_id: str, draft: PhotoDraft, holder: str | None = None) -> None:
        """Hold `draft` as the session's set being edited; `holder`: the network address its edits come from (None:
        no network, as in the CLI; such drafts share only the whole store's bounds)."""
        with self._lock:
            if holder is None and session_id in self._drafts:  # held again without a network (a page's return)
                holder = self._drafts[session_id][2]
            self._drop(session_id)
            self._drafts[session_id] = (self._clock(), draft, holder)
            self._photos += len(draft.photos)
            counts = self._held.setdefault(holder, [0, 0])
            counts[0], counts[1] = counts[0] + 1, counts[1] + len(draft.photos)
            # Past its share, the holder's own least recently edited draft goes (never the one just put).
            while holder is not None and (counts[0] > self.drafts_per_holder
                                          or (counts[1] > self.photos_per_holder and counts[0] > 1)):
                self._evict(next(s for s, held in self._drafts.items() if held[2] == holder and s != session_id))
            while len(self._drafts) > 1 and (len(self._drafts) > self._capacity or self._photos > self._max_photos):
                self._evict(self._oldest_of_largest_holder(but=session_id))

    def dropped(self, session_id: str) -> str | None:
        """The words for a person whose unfinished set had to go (once: they are then told), or None."""
        with self._lock:
            self._expire()
            return DROPPED_WORDS if self._dropped.pop(session_id, False) is None else None

    def forget_session(self, session_id: str) -> None:
        """Erasure hook: the session's photos leave memory with its vault keys."""
        with self._lock:
            self._drop(session_id)
            self._dropped.pop(session_id, None)

    def _oldest_of_largest_holder(self, but: str) -> str:
        largest = max((h for s, (_, _, h) in self._drafts.items() if s != but), key=lambda h: self._held[h][0])
        return next(s for s, held in self._drafts.items() if held[2] == largest and s != but)

    def _evict(self, session_id: str) -> None:
        draft = self._drafts[session_id][1]
        self._drop(session_id)
        if len(draft.photos) > len(draft.sealed_ids):  # photos not sealed were lost; a sealed set comes back
            self._dropped[session_id] = None
        while len(self._dropped) > 10 * self._capacity:  # bounded: the oldest losses are no longer told
            self._dropped.popitem(last=False)

    def held_sessions(self) -> set[str]:
        """The sessions with a draft in memory (privacy.lifecycle.memory_sweep asks, to forget those erased
        elsewhere)."""
        with self._lock:
            self._expire()
            return set(self._drafts)

    def photos_held(self) -> int:
        with self._lock:
            self._expire()
            return self._photos

    def _drop(self, session_id: str) -> None:
        held = self._drafts.pop(session_id, None)
        if held is not None:
            self._photos -= len(held[1].photos)
            counts = self._held[held[2]]
            counts[0], counts[1] = counts[0] - 1, counts[1] - len(held[1].photos)
            if not counts[0]:
                del self._held[held[2]]

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._drafts)

    def _expire(self) -> None:
        deadline = self._clock() - self._ttl
        while self._drafts and next(iter(self._drafts.values()))[0] < deadline:
            self._evict(next(iter(self._drafts)))  # an unfinished set left for 30 minutes: told too, if they return
