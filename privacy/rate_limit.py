"""A per-client token bucket: how often one client may upload photos or start a generation.

Pure and clock-injected: no threads, no I/O, nothing about the client but an opaque key the
caller chooses (the app passes a random per-browser id, never a name or an address in logs).
A bucket holds at most `capacity` tokens and regains `refill_per_second`; each action costs one.
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


# Generous enough for a person fixing a rejected photo a few times; tight enough that one
# client cannot hold the single GPU or flood the screening CPU.
UPLOAD_LIMIT = Limit(capacity=12, refill_per_second=1 / 20)       # 12 at once, then 3 a minute
GENERATION_LIMIT = Limit(capacity=4, refill_per_second=1 / 300)   # 4 at once, then 1 per 5 minutes


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

    def try_take(self, key: str) -> float:
        """Spend one token for `key`: 0.0 when allowed, else the seconds until a token is back."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[key] = _Bucket(tokens=float(self.limit.capacity), updated=now)
            self._refill(bucket, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.limit.refill_per_second

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
