"""The per-client token bucket that limits uploads and generations."""

import pytest

from web.boundary.rate_limit import ADDRESS_REQUEST_LIMIT, GENERATION_LIMIT, UPLOAD_LIMIT, Limit, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_new_client_may_act_up_to_capacity_then_is_refused():
    limiter = RateLimiter(Limit(capacity=3, refill_per_second=1 / 60), clock=FakeClock())
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_refusal_says_how_long_until_the_next_token():
    clock = FakeClock()
    limiter = RateLimiter(Limit(capacity=1, refill_per_second=1 / 60), clock=clock)
    assert limiter.try_take("a") == 0.0
    assert limiter.try_take("a") == pytest.approx(60.0)
    clock.now += 45
    assert limiter.try_take("a") == pytest.approx(15.0)


def test_tokens_come_back_with_time_but_never_above_capacity():
    clock = FakeClock()
    limiter = RateLimiter(Limit(capacity=2, refill_per_second=1.0), clock=clock)
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    clock.now += 1
    assert limiter.allow("a") and not limiter.allow("a")
    clock.now += 1_000  # a long pause refills to capacity, not to 1000 tokens
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_one_client_exhausting_its_bucket_does_not_limit_another():
    limiter = RateLimiter(Limit(capacity=1, refill_per_second=1 / 60), clock=FakeClock())
    assert limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")


def test_a_clock_stepping_back_mints_no_tokens():
    clock = FakeClock()
    limiter = RateLimiter(Limit(capacity=1, refill_per_second=1.0), clock=clock)
    assert limiter.allow("a")
    clock.now -= 3600
    assert not limiter.allow("a")


def test_memory_stays_bounded_and_a_limited_client_is_remembered_over_idle_ones():
    clock = FakeClock()
    limiter = RateLimiter(Limit(capacity=2, refill_per_second=1 / 60), clock=clock, max_clients=2)
    assert limiter.allow("busy") and limiter.allow("busy")   # busy: 0 tokens left
    assert limiter.allow("idle")                              # idle: 1 token left
    clock.now += 60                                           # busy: 1, idle: 2 (full)
    assert limiter.allow("newcomer")                          # room is made by forgetting the full bucket
    assert len(limiter._buckets) == 2
    # Had "busy" been forgotten it would start over with 2 tokens; it has exactly 1.
    assert [limiter.allow("busy") for _ in range(2)] == [True, False]


def test_limits_reject_nonsense():
    with pytest.raises(ValueError):
        Limit(capacity=0, refill_per_second=1)
    with pytest.raises(ValueError):
        Limit(capacity=1, refill_per_second=0)


def test_default_limits_allow_a_normal_journey_and_stop_a_flood():
    uploads, generations = (RateLimiter(UPLOAD_LIMIT, clock=FakeClock()),
                            RateLimiter(GENERATION_LIMIT, clock=FakeClock()))
    assert all(uploads.allow("a") for _ in range(5))       # a few retries of a rejected photo
    assert all(generations.allow("a") for _ in range(2))   # a second set of styles
    assert not all(uploads.allow("a") for _ in range(100))
    assert not all(generations.allow("a") for _ in range(100))


def test_a_per_address_limit_for_several_people_is_that_many_times_the_burst_and_the_refill():
    office = ADDRESS_REQUEST_LIMIT.times(50)
    assert office == Limit(capacity=ADDRESS_REQUEST_LIMIT.capacity * 50,
                           refill_per_second=ADDRESS_REQUEST_LIMIT.refill_per_second * 50)
    assert ADDRESS_REQUEST_LIMIT.times(1) == ADDRESS_REQUEST_LIMIT
