"""A person's photo set while they shape it: add photos, remove one, replace one, without sending the rest again.

The vault holds a session's photos all-or-nothing: the accepted photos of a set that passes
every check, sealed together, or nothing (privacy.intake.screening decides; studio.service seals).
Between those two states, while a set is still short of photos or has a stranger in it, the
person's screened photos wait here, **in memory only**, so that they can fix the one photo
that is wrong instead of uploading all of them again:

    PhotoDrafts.get / put      the set being edited, per session (LRU, bounded, with a lifetime)
    forget_session             an erasure hook: delete-now and the identity schedule drop it at once

A draft lives at most `ttl_seconds` after its last edit and at most `capacity` drafts, holding at most
`max_photos` photos together, are held (the least recently edited goes first); a person whose draft went
sees their sealed set again if there is one (rebuilt from the vault), or starts the set again. Nothing here
is ever written to disk. Each photo gets a random id so that the page can name "this photo" across edits.
"""

from __future__ import annotations

import io
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


class PhotoDrafts:
    def __init__(self, capacity: int = DRAFT_CAPACITY, ttl_seconds: float = DRAFT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic, max_photos: int = DRAFT_PHOTOS_HELD) -> None:
        self._drafts: OrderedDict[str, tuple[float, PhotoDraft]] = OrderedDict()
        self._capacity, self._ttl, self._clock, self._max_photos = capacity, ttl_seconds, clock, max_photos
        self._photos = 0  # held in all drafts together
        self._lock = threading.Lock()

    def get(self, session_id: str) -> PhotoDraft | None:
        with self._lock:
            self._expire()
            held = self._drafts.get(session_id)
            return held[1] if held is not None else None

    def put(self, session_id: str, draft: PhotoDraft) -> None:
        with self._lock:
            self._drop(session_id)
            self._drafts[session_id] = (self._clock(), draft)
            self._photos += len(draft.photos)
            while len(self._drafts) > 1 and (len(self._drafts) > self._capacity or self._photos > self._max_photos):
                self._drop(next(iter(self._drafts)))  # the least recently edited; the newest always stays

    def forget_session(self, session_id: str) -> None:
        """Erasure hook: the session's photos leave memory with its vault keys."""
        with self._lock:
            self._drop(session_id)

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

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._drafts)

    def _expire(self) -> None:
        deadline = self._clock() - self._ttl
        while self._drafts and next(iter(self._drafts.values()))[0] < deadline:
            self._drop(next(iter(self._drafts)))
