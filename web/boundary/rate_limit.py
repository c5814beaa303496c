"""Token buckets: how often one client, or one network address, may act, and how many bytes it may send.

Pure and clock-injected: no threads, no I/O, nothing about the client but an opaque key the
caller chooses (a signed per-browser id, or a salted hash of the address: never a name or a
readable address). A bucket holds at most `capacity` tokens and regains `refill_per_second`;
an action costs one token by default, or its `cost` (bytes, for upload budgets).

Why two keys: a browser's cookie proves continuity but anyone can mint a fresh one with a GET,
so every limited action is charged to the cookie *and* to the address (see `web.boundary.middleware`),
and a stranger who throws cookies away still meets the address budget.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Limit:
    """`capacity` actions at once, then one more every `1 / refill_per_second` seconds."""

    capacity: int
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("A limit needs capacity >= 1 and a positive refill rate.")

    def times(self, people: int) -> "Limit":
        """This per-address limit for an address `people` use at once (HEADSHOT_PEOPLE_PER_ADDRESS)."""
        return Limit(capacity=self.capacity * people, refill_per_second=self.refill_per_second * people)


# Generous enough for a person fixing a rejected photo a few times; tight enough that one
# client cannot hold the single GPU or flood the screening CPU.
UPLOAD_LIMIT = Limit(capacity=12, refill_per_second=1 / 20)       # 12 at once, then 3 a minute
GENERATION_LIMIT = Limit(capacity=4, refill_per_second=1 / 300)   # 4 at once, then 1 per 5 minutes
# Per network address: several people behind one office NAT share it, so it is a multiple of the
# per-browser limit; its job is to stop one machine that mints a fresh cookie for every call. An operator
# whose people reach the studio from one address multiplies every per-address limit by how many use it
# at once (HEADSHOT_PEOPLE_PER_ADDRESS, `Limit.times`); per-browser limits stay.
ADDRESS_UPLOAD_LIMIT = Limit(capacity=48, refill_per_second=12 / 60)
ADDRESS_GENERATION_LIMIT = Limit(capacity=12, refill_per_second=4 / 300)
# Presenting a return key: a person retypes a code a few times; a guesser needs 2^128 tries anyway,
# and this keeps the cost of trying, and any timing signal, out of reach.
CLIENT_KEY_LIMIT = Limit(capacity=10, refill_per_second=1 / 30)
ADDRESS_KEY_LIMIT = Limit(capacity=30, refill_per_second=1 / 10)
# Starting a session (consent): each has database rows and a return key kept for up to a day. A person starts one,
# or a few after deleting; one address made 223 in 27 s with only the request rate to stop it (issue 28).
CLIENT_SESSION_LIMIT = Limit(capacity=5, refill_per_second=1 / 120)
ADDRESS_SESSION_LIMIT = Limit(capacity=30, refill_per_second=1 / 10)
# Protocol requests (queue joins, cancels) per address and per browser: a page makes a few per
# click; a flood of thousands is what these stop, before Gradio's queue holds any of them.
# A whole visit is about ten joins, so an address may start some 24 visits a minute, after a burst of 12.
ADDRESS_REQUEST_LIMIT = Limit(capacity=120, refill_per_second=4)
CLIENT_REQUEST_LIMIT = Limit(capacity=60, refill_per_second=2)
# `/media` requests (a gallery's images, downloads, ZIPs): a gallery loads one image per headshot at once, so the
# burst is a large gallery's; a loop of downloads meets the refill (issue 28: 896 requests in 15 s from one owner).
ADDRESS_MEDIA_LIMIT = Limit(capacity=240, refill_per_second=8)
CLIENT_MEDIA_LIMIT = Limit(capacity=120, refill_per_second=4)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client; `allow(key)` spends a token or says how long to wait."""

    def __init__(self, limit: Limit, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000):
        self.limit = limit
        self.clock = clock
        self.max_clients = max_clients  # memory bound: full buckets are forgotten first
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # handlers run in Gradio's worker threads

    def allow(self, key: str) -> bool:
        return self.try_take(key) == 0.0

    def try_take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens for `key`: 0.0 when allowed, else the seconds until they are back.

        A cost above the capacity can never be paid; it is refused with the time a full bucket takes.
        """
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[key] = _Bucket(tokens=float(self.limit.capacity), updated=now)
            self._refill(bucket, now)
            if cost > self.limit.capacity:  # can never be paid: refused, with the time a full refill takes
                return self.limit.capacity / self.limit.refill_per_second
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.limit.refill_per_second

    def refund(self, key: str, cost: float) -> None:
        """Give back tokens charged for work that was refused later for another reason (never above capacity)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(float(self.limit.capacity), bucket.tokens + cost)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - bucket.updated)  # a clock that steps back never mints tokens
        bucket.tokens = min(float(self.limit.capacity), bucket.tokens + elapsed * self.limit.refill_per_second)
        bucket.updated = now

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        # A full bucket carries no information (a new client starts full), so dropping it is free.
        for key, bucket in list(self._buckets.items()):
            self._refill(bucket, now)
            if bucket.tokens >= self.limit.capacity:
                del self._buckets[key]
        if len(self._buckets) >= self.max_clients:  # everyone is mid-burst: forget the oldest
            oldest = min(self._buckets, key=lambda k: self._buckets[k].updated)
            del self._buckets[oldest]
