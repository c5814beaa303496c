"""Fair shares of a shared pool: one address never takes the whole of it, however many people it is said to hold."""

import pytest

from web.boundary.fair_share import ConsentedBrowsers, Slots, share_of


@pytest.mark.parametrize("pool", [1, 2, 4, 32, 640, 10_000])
@pytest.mark.parametrize("people", [1, 3, 10_000])
def test_a_share_is_at_least_one_and_never_more_than_half_of_a_pool_that_can_be_halved(pool, people):
    share = share_of(pool, 1 / 8, people)
    assert share >= 1 and (share <= pool // 2 or pool == 1)


def test_a_share_grows_with_the_people_behind_the_address():
    assert share_of(10_000, 1 / 20, 1) == 500 and share_of(10_000, 1 / 20, 3) == 1500


def test_slots_hold_per_browser_per_address_and_in_all_and_come_back():
    slots = Slots(2, per_client=1, per_address=1)
    with slots.slot("cookie-a", "addr-1") as first:
        with slots.slot("cookie-b", "addr-1") as same_network, slots.slot("cookie-a", "addr-2") as same_browser:
            assert first and not same_network and not same_browser
        with slots.slot("cookie-c", "addr-2") as other:
            assert other
            with slots.slot("cookie-d", "addr-3") as third:
                assert not third  # both slots taken
    with slots.slot("cookie-b", "addr-1") as later:
        assert later  # given back when the first was done


def test_consented_browsers_are_bounded_least_recently_seen_first():
    seen = ConsentedBrowsers(capacity=2)
    for client in ("a", "b", "c"):
        seen.add(client)
    assert "a" not in seen and "b" in seen and "c" in seen
