"""Fair shares of the server's fixed pools: how much of one pool a browser, or a network address, may hold at once.

Every pool the studio keeps in this process (sealed uploads waiting for their handler, photo sets being edited,
slots for resized downloads and ZIPs) has a size; without a share per holder, one address that mints cookies
filled a pool and everyone else was refused or evicted (issue 28). A share is a fraction of the pool per person
behind the address (HEADSHOT_PEOPLE_PER_ADDRESS, as the GPU line's share), and never more than half the pool:
one address can never take the whole of it, however many people the operator says it holds.

    share_of(pool, fraction, people)    how much of `pool` one address may hold
    Slots                               a few things made at once, per browser and per address within the total
    ConsentedBrowsers                   the browsers whose page has given consent (uploads before it are tiny)

These are pools of this process's memory, disk and CPU, so their shares are per process too: with N replicas each
has its own pools and its own shares (README "Limits"). Rates that must hold across replicas are in
`web.boundary.shared_limits`.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator


def share_of(pool: int, fraction: float, people: int = 1) -> int:
    """How much of `pool` one address may hold: `fraction` of it for each of its `people`, at least 1, at most half."""
    per_person = max(1, math.ceil(pool * fraction))
    return max(1, min(per_person * max(1, people), pool // 2))


class Slots:
    """At most `total` at once, `per_client` for one browser and `per_address` for one network address.

    Never waits: a caller that finds no slot is told so at once (and tells its person to retry), so no thread of
    the shared pool is held waiting.
    """

    def __init__(self, total: int, *, per_client: int, per_address: int) -> None:
        self.total, self.per_client, self.per_address = total, per_client, per_address
        self._held: dict[str, int] = {}
        self._in_use = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, client: str, address: str) -> Iterator[bool]:
        """`with slots.slot(client, address) as got:`; `got` is False when this browser, address or all are full."""
        got = self._take(client, address)
        try:
            yield got
        finally:
            if got:
                self._give_back(client, address)

    def _take(self, client: str, address: str) -> bool:
        keys = ("c:" + client, "a:" + address)
        with self._lock:
            if self._in_use >= self.total or self._held.get(keys[0], 0) >= self.per_client \
                    or self._held.get(keys[1], 0) >= self.per_address:
                return False
            self._in_use += 1
            for key in keys:
                self._held[key] = self._held.get(key, 0) + 1
            return True

    def _give_back(self, client: str, address: str) -> None:
        with self._lock:
            self._in_use -= 1
            for key in ("c:" + client, "a:" + address):
                left = self._held.get(key, 1) - 1
                if left:
                    self._held[key] = left
                else:
                    self._held.pop(key, None)


class RecentClients:
    """A bounded set of browser ids: the least recently added are forgotten first (a page's choice or state that
    may be lost under a flood of fresh cookies, never grow without bound)."""

    def __init__(self, capacity: int) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, client: str) -> None:
        with self._lock:
            self._seen.pop(client, None)
            self._seen[client] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    def discard(self, client: str) -> None:
        with self._lock:
            self._seen.pop(client, None)

    def __contains__(self, client: object) -> bool:
        with self._lock:
            return client in self._seen


class ConsentedBrowsers(RecentClients):
    """The browsers whose page gave consent or reopened a consented session (the handlers say so; the boundary
    asks before it seals an upload). Bounded: the least recently seen are forgotten first, and a forgotten browser
    is only held to the small upload share until its page consents or reopens its session again."""

    def __init__(self, capacity: int = 100_000) -> None:
        super().__init__(capacity)
