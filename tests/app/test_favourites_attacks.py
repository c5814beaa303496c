"""The favourites event as a stranger meets it: raw protocol calls against the real server (web.visitor.favourites).

Whatever is sent, the answer is a sentence (never a traceback in the log), only ids of the caller's own headshots
are kept, and nothing is kept for a caller without a session.
"""

from __future__ import annotations

import itertools
import re

import pytest

from tests.app.raw_gradio import RawBrowser

PHOTOS = ("obama_1.jpg", "obama_4.jpg")
_addresses = itertools.count()


def fresh() -> str:
    """A loopback address of its own for each visitor (the per-address limits are tested elsewhere)."""
    n = next(_addresses)
    return f"127.0.{100 + n // 250}.{1 + n % 250}"


def said(answer) -> str:
    return re.sub(r"<[^>]+>", "", answer.data[0]) if answer.success else answer.error


@pytest.fixture(scope="module")
def two_galleries(server, faces_dir):
    """Two sessions with two headshots each: (owner, its ids, the other, its ids)."""
    def make() -> tuple[RawBrowser, list[str]]:
        browser = RawBrowser(server.url, address=fresh(), timeout=60)
        browser.open_page()
        consented = browser.consent()
        assert consented.success
        browser.code = re.search(r"data-code='([^']+)'", str(consented.data)).group(1)
        assert browser.upload_photos([faces_dir / n for n in PHOTOS]).success
        made = browser.call("generate", [["corporate_grey"], 2, None])
        assert made.success, made.error
        return browser, re.findall(r"data-shot='([^']+)'", made.data[0])

    owner, mine = make()
    other, theirs = make()
    yield owner, mine, other, theirs
    for browser in (owner, other):
        browser.delete_now()  # the shared server: other tests look at its whole vault
        browser.close()


def test_only_the_callers_own_headshots_are_kept_as_favourites(server, two_galleries, clean_log):
    owner, mine, other, theirs = two_galleries
    assert len(mine) == 2 and len(theirs) == 2
    assert "1 favourite saved with your session" in said(owner.call("save_favourites", [mine[1], None]))
    # Another session's ids, a made-up one: left out, and said so; the caller's own is kept.
    answer = said(owner.call("save_favourites", [",".join([*theirs, "../x", mine[0], mine[0]]), None]))
    assert "1 favourite saved" in answer and "3 starred headshots not in your gallery were left out" in answer
    # The other person's favourites are untouched by all this: they have none.
    assert "No favourites" in said(other.call("save_favourites", ["", None]))
    # The owner's code opened in another browser: the gallery is drawn with the session's one star.
    elsewhere = RawBrowser(server.url, address=fresh(), timeout=60)
    try:
        elsewhere.open_page()
        reopened = elsewhere.call("attach", [owner.code])
        assert reopened.success, reopened.error
        html = next(v for v in map(str, reopened.data) if "data-shot" in v)
        figures = re.findall(r"<figure class='hs-shot' data-shot='([^']+)'.*?</figure>", html, flags=re.S)
        starred = re.findall(r"data-shot='([^']+)'(?:(?!</figure>).)*?aria-pressed='true'", html, flags=re.S)
        assert len(figures) == 2 and starred == [mine[0]]
    finally:
        elsewhere.close()


@pytest.mark.parametrize("sent", ["x" * 100_000, ",".join(["a"] * 501), 12345, ["a", "b"], {"a": 1}, None])
def test_a_hostile_favourites_value_is_a_sentence_never_a_traceback(two_galleries, clean_log, sent):
    owner, mine, _, _ = two_galleries
    assert "1 favourite saved" in said(owner.call("save_favourites", [mine[1], None]))
    answer = owner.call("save_favourites", [sent, None])
    if answer.success:  # Gradio's textbox reads some values as text: naming no headshot, nothing of it is kept
        assert "No favourites" in said(answer), said(answer)
    else:
        assert "Traceback" not in answer.error and len(answer.error) < 400
        assert re.search(r"At most 500|not one this page offers", answer.error), answer.error
        assert "1 favourite saved" in said(owner.call("save_favourites", [mine[1], None]))


def test_a_caller_without_a_session_keeps_nothing(server, two_galleries, clean_log):
    _, mine, _, _ = two_galleries
    stranger = RawBrowser(server.url, address=fresh(), timeout=30)
    try:
        stranger.open_page()
        answer = stranger.call("save_favourites", [",".join(mine), None])
        assert not answer.success and "Nothing was saved" in answer.error
    finally:
        stranger.close()
