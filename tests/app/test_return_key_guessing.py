"""Guessing return keys, against the real server over raw HTTP: no data, one neutral answer, and a limit that engages.

A guesser knows the format (28 Crockford characters, two of them a check pair), so the 1,000
guesses here are well-formed random keys, plus near misses of a real one. Each guesser is a
browser of its own on an address of its own (127.0.6.N), under the per-address limit, so every
guess reaches the lookup. The limit is then shown to engage for one address that keeps trying.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from privacy.store.return_keys import ALPHABET, ReturnKey
from tests.app.raw_gradio import RawBrowser

GUESSES = 1000
GUESSERS = 100
UNKNOWN = "does not open any session here"


def code_of(consent_answer) -> str:
    match = re.search(r"data-code='([0-9A-Z-]+)'", str(consent_answer.data))
    assert match, consent_answer
    return match.group(1)


def the_note(answer) -> str:
    """What a returning page is told: the return note (output 9 of `attach`)."""
    return answer.data[8] if answer.success else answer.error


@pytest.fixture(scope="module")
def owners(server, faces_dir):
    """A live session's key and an erased session's key, with the browsers that made them."""
    live, gone = RawBrowser(server.url, address="127.0.5.1"), RawBrowser(server.url, address="127.0.5.2")
    for browser in (live, gone):
        browser.open_page()
    live_code, gone_code = code_of(live.consent()), code_of(gone.consent())
    assert gone.delete_now().success
    yield live_code, gone_code
    live.close()
    gone.close()


def guess_from(server, n: int, codes: list[str]) -> list:
    browser = RawBrowser(server.url, address=f"127.0.6.{n + 1}")
    try:
        browser.open_page()
        return [browser.call("attach", [code]) for code in codes]
    finally:
        browser.close()


def test_a_thousand_random_keys_open_nothing_and_all_get_the_unknown_key_answer(server, owners):
    live_code, _ = owners
    near_misses = [live_code[:i] + next(c for c in ALPHABET if c != live_code[i]) + live_code[i + 1:]
                   for i in range(0, len(live_code)) if live_code[i] != "-"][:40]
    guesses = near_misses + [ReturnKey.new().code for _ in range(GUESSES - len(near_misses))]
    per_guesser = GUESSES // GUESSERS
    with ThreadPoolExecutor(4) as pool:
        answers = [a for batch in pool.map(lambda n: guess_from(server, n,
                                                                guesses[n * per_guesser:(n + 1) * per_guesser]),
                                           range(GUESSERS)) for a in batch]
    assert len(answers) == GUESSES and all(a.success for a in answers)
    # One answer for all of them, to the byte: no session, no gallery, no key panel, no countdowns.
    assert len({repr(a.data) for a in answers}) == 1
    assert UNKNOWN in the_note(answers[0])
    assert all(a.data[0] is None or a.data[0] == {"__type__": "update"} for a in answers)
    assert "hs-shot" not in repr(answers[0].data) and "data-code" not in repr(answers[0].data)


def test_the_right_key_of_an_erased_session_says_only_when_it_was_erased(server, owners):
    _, gone_code = owners
    browser = RawBrowser(server.url, address="127.0.5.3")
    browser.open_page()
    note = the_note(browser.call("attach", [gone_code]))
    browser.close()
    assert re.search(r"The data of this session was erased on \d{4}-\d\d-\d\d \d\d:\d\d UTC\. Nothing of it is kept\.",
                     note), note


def test_one_address_that_keeps_guessing_is_stopped_and_the_owner_is_not(server, owners):
    live_code, _ = owners
    answers, browsers = [], []
    for _ in range(5):  # fresh cookies do not reset the address's budget
        browser = RawBrowser(server.url, address="127.0.7.1")
        browser.open_page()
        browsers.append(browser)
        answers += [browser.call("attach", [ReturnKey.new().code]) for _ in range(8)]
    refused = [a for a in answers if not a.success]
    assert refused and "Too many attempts to open a session" in refused[0].error
    assert sum(a.success for a in answers) <= 30  # the address's burst, whatever the number of cookies
    # Even the right key is not looked up from the stopped address ...
    stopped = browsers[-1].call("attach", [live_code])
    assert not stopped.success and "Too many attempts" in stopped.error
    # ... while its owner, elsewhere, opens the session as usual.
    owner = RawBrowser(server.url, address="127.0.5.4")
    owner.open_page()
    assert "Welcome back" in str(owner.call("attach", [live_code]).data)
    for browser in [owner, *browsers]:
        browser.close()
