"""The owner's key while they are here: held in memory for the pages that presented it, and nowhere else.

A page presents the return key (on consent, on reload, when the private link is opened); the
derived owner key is kept here for that session as long as at least one such page is open, so
the owner's headshots can be shown and downloaded. When the last page closes, or the session is
erased, the key is dropped: from then on the stored headshots open only with the return key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class _Held:
    owner_key: bytes
    tabs: set[str] = field(default_factory=set)


class OwnerPresence:
    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._tab_session: dict[str, str] = {}
        self._lock = threading.Lock()

    def hold(self, session_id: str, owner_key: bytes, tab: str) -> None:
        with self._lock:
            previous = self._tab_session.get(tab)
            if previous is not None and previous != session_id:
                self._drop_tab(tab)
            held = self._held.setdefault(session_id, _Held(owner_key))
            held.owner_key = owner_key
            held.tabs.add(tab)
            self._tab_session[tab] = session_id

    def key_of(self, session_id: str | None) -> bytes | None:
        with self._lock:
            held = self._held.get(session_id or "")
            return held.owner_key if held is not None else None

    def release(self, tab: str) -> None:
        """A page closed: the key goes once no page of its session is left."""
        with self._lock:
            self._drop_tab(tab)

    def forget_session(self, session_id: str) -> None:
        """Erasure hook: nothing of an erased session stays in memory."""
        with self._lock:
            held = self._held.pop(session_id, None)
            for tab in held.tabs if held else ():
                self._tab_session.pop(tab, None)

    def held_sessions(self) -> set[str]:
        """The sessions whose owner key is held (privacy.lifecycle.memory_sweep asks, to forget those erased
        elsewhere)."""
        with self._lock:
            return set(self._held)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def _drop_tab(self, tab: str) -> None:  # with the lock held
        session_id = self._tab_session.pop(tab, None)
        held = self._held.get(session_id or "")
        if held is None:
            return
        held.tabs.discard(tab)
        if not held.tabs:
            del self._held[session_id]
