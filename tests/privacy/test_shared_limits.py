"""Per-address limits across the app's replicas: kept in queue mode's Redis, so an address gets its budget once.

Issue 28: rate limits were per process, so with N replicas a client got N times the budget. Two "replicas" here are
two boundaries (or two limit pairs) built the way app.py builds each replica's, against one real Redis
(tests/redis_server.py); the requests of one address alternate between them, as a load balancer would send them.
"""

import base64
import os

from app import address_limits
from settings import load_settings
from tests.privacy.test_boundary import call, cookie_header, join, make_boundary
from web.admission import LimitPair
from web.boundary.rate_limit import ADDRESS_REQUEST_LIMIT, Limit, RateLimiter
from web.boundary.shared_limits import shared_limiters

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


def queue_settings(tmp_path, url):
    return load_settings({"HEADSHOT_DATA_DIR": str(tmp_path / "data"), "HEADSHOT_QUEUE_URL": url,
                          "HEADSHOT_MASTER_KEY": MASTER_KEY})


def replica(tmp_path, settings, name):
    limiters, addresses = address_limits(settings)  # each replica makes its own, as each process does
    boundary, downstream, _ = make_boundary(tmp_path / name, limiters=limiters, addresses=addresses)
    return boundary, downstream


def test_two_replicas_give_one_address_its_request_budget_once_not_twice(tmp_path, redis_server):
    settings = queue_settings(tmp_path, redis_server.url)
    replicas = [replica(tmp_path, settings, "a"), replica(tmp_path, settings, "b")]
    statuses = []
    for i in range(2 * ADDRESS_REQUEST_LIMIT.capacity):
        boundary, _ = replicas[i % 2]
        body, headers = join(f"flood{i:06d}", [], cookie_header())  # a fresh cookie each time
        statuses.append(call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)[0])
    let_through = statuses.count(200)
    # The bucket refills at 4/s while the loop runs: a little over one budget, never near the two of separate replicas.
    assert ADDRESS_REQUEST_LIMIT.capacity <= let_through < 1.5 * ADDRESS_REQUEST_LIMIT.capacity
    body, headers = join("someoneelse1", [], cookie_header())  # another address is served on either replica
    assert call(replicas[1][0], "POST", "/gradio_api/queue/join", body=body, headers=headers,
                peer="198.51.100.2")[0] == 200


def test_return_key_attempts_from_one_address_are_counted_across_replicas(redis_server):
    make = shared_limiters(redis_server.url)
    per_address = Limit(capacity=30, refill_per_second=1 / 10)
    replicas = [LimitPair(Limit(10, 1 / 30), per_address, "attempts to open a session", make) for _ in range(2)]
    refused = 0
    for i in range(60):
        try:
            replicas[i % 2].charge(f"cookie-{i}", "addr-guesser")
        except Exception as exc:
            assert "Too many attempts to open a session" in exc.message
            refused += 1
    assert refused == 30  # 30 for the address in all, not 30 on each replica


def test_without_queue_mode_the_limits_stay_in_this_process(tmp_path):
    settings = load_settings({"HEADSHOT_DATA_DIR": str(tmp_path / "data")})
    limiters, addresses = address_limits(settings)
    assert isinstance(limiters(Limit(1, 1), "x"), RateLimiter)
    assert addresses.key("203.0.113.7") != address_limits(settings)[1].key("203.0.113.7")  # a salt per process


def test_replicas_key_one_address_alike_and_never_store_it(tmp_path, redis_server):
    settings = queue_settings(tmp_path, redis_server.url)
    first, second = address_limits(settings)[1], address_limits(settings)[1]
    assert first.key("203.0.113.7") == second.key("203.0.113.7") and "203.0.113" not in first.key("203.0.113.7")


def test_an_unreachable_redis_falls_back_to_this_process_limit():
    limiter = shared_limiters("redis://127.0.0.1:1/0")(Limit(capacity=3, refill_per_second=1 / 60), "x")
    assert [limiter.try_take("addr") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_take("addr") > 0  # still limited: never open because the broker is away
