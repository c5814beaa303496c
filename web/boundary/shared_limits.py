"""Per-address rate limits that hold across the app's replicas: kept in Redis when queue mode has one.

With N app replicas behind a load balancer, a limit kept in each process's memory gives a client N times its
budget (issue 28). In queue mode (HEADSHOT_QUEUE_URL) the replicas already share a Redis, so every per-address
limit is kept there, by the `limits` library's sliding-window counter (one counter pair per address and limit,
expiring with its window), rather than by a store of our own. Elsewhere, one process serves everyone and the
in-process token buckets of `web.boundary.rate_limit` are exact.

A `Limit` of `capacity` at once refilled at `refill_per_second` becomes "`capacity` per `capacity / refill`
seconds", a sliding window: the same burst and the same long-run rate. Per-browser limits stay in each process:
a browser's page talks to one replica at a time, and what one browser can do across replicas its address's shared
limit still bounds. The fair shares of this process's pools (web.boundary.fair_share) are per process by nature.

Keys are the salted address hashes of `web.boundary.client_address` (never an address): in queue mode the salt is
derived from the master key, which every replica shares, so that one address is one key everywhere. If Redis
cannot be reached, each limit falls back to this process's own bucket (logged), so an outage of the broker never
opens the studio to floods, nor shuts it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Protocol

from web.boundary.rate_limit import Limit, RateLimiter

log = logging.getLogger(__name__)
KEY_PREFIX = "headshot-limits"


class Limiter(Protocol):
    """What every limiter offers (web.boundary.rate_limit.RateLimiter, SharedRateLimiter)."""

    limit: Limit

    def try_take(self, key: str, cost: float = 1.0) -> float: ...
    def refund(self, key: str, cost: float) -> None: ...
    def allow(self, key: str) -> bool: ...


MakeLimiter = Callable[[Limit, str], Limiter]


def in_process(limit: Limit, name: str = "") -> Limiter:
    return RateLimiter(limit)


class SharedRateLimiter:
    """A `Limit` kept in a `limits` storage (Redis) under `name`, with this process's bucket as the fallback."""

    def __init__(self, limit: Limit, name: str, storage: object, *, clock: Callable[[], float] = time.time) -> None:
        from limits import RateLimitItemPerSecond
        from limits.strategies import SlidingWindowCounterRateLimiter

        self.limit, self.name, self._clock = limit, name, clock
        window = max(1, math.ceil(limit.capacity / limit.refill_per_second))
        self._item = RateLimitItemPerSecond(limit.capacity, window, namespace=KEY_PREFIX)
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._fallback = RateLimiter(limit)
        self._failed_at = -math.inf

    def allow(self, key: str) -> bool:
        return self.try_take(key) == 0.0

    def try_take(self, key: str, cost: float = 1.0) -> float:
        """0.0 when `cost` was spent for `key` on every replica's count, else the seconds until it could be."""
        cost = max(1, math.ceil(cost))
        if cost > self.limit.capacity:  # can never be paid
            return self.limit.capacity / self.limit.refill_per_second
        try:
            if self._strategy.hit(self._item, self.name, key, cost=cost):
                return 0.0
            stats = self._strategy.get_window_stats(self._item, self.name, key)
        except Exception as exc:  # Redis away: this process's own bucket, until it answers again
            self._note_failure(exc)
            return self._fallback.try_take(key, cost)
        return max(1.0, stats.reset_time - self._clock())

    def refund(self, key: str, cost: float) -> None:
        """Not possible on a shared sliding window: a request refused by a browser's own limit right after its
        address paid costs that address one token (the in-process buckets give it back)."""

    def _note_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._failed_at > 60:  # once a minute, not once a request
            log.error("shared rate limits unavailable, using this process's own (%s)", type(exc).__name__)
        self._failed_at = now


def shared_limiters(redis_url: str) -> MakeLimiter:
    """Limiters kept in the Redis at `redis_url` (queue mode's broker), one storage for them all."""
    from limits.storage import storage_from_string

    # Short timeouts: a limit check is in every request's path; an unreachable Redis falls back at once.
    storage = storage_from_string(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def make(limit: Limit, name: str) -> Limiter:
        return SharedRateLimiter(limit, name, storage)

    return make
