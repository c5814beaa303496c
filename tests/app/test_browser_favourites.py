"""Favourites come back with the private link in a fresh browser, in Debian's Chromium (issue 27).

consent → two photos → two styles (4 headshots) → star one in the gallery and one in the enlarged view → the
whole browser context goes → a new context (no cookie, no storage) opens the link → the same two are starred,
"Download favourites" gives those two → unstar one, reload: one → delete everything: the link says erased.
"""

import re
import zipfile

import pytest

from tests.app.conftest import consent_in
from tests.app.test_browser_visitor import PHONE, _erase

pytestmark = pytest.mark.browser

STARRED = ("[...document.querySelectorAll('#hs-gallery figure.hs-shot')]"
           ".filter((f) => f.querySelector('[data-hs-star]').getAttribute('aria-pressed') === 'true')"
           ".map((f) => f.dataset.shot)")
NOTE_SAYS = "(t) => (document.querySelector('#hs-fav-note')?.innerText || '').includes(t)"


def test_favourites_come_back_with_the_link_in_a_fresh_browser_context(server, browser, faces_dir, artifacts,
                                                                        clean_log):
    shots = artifacts / "favourites"
    shots.mkdir(parents=True, exist_ok=True)
    first = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = first.new_page()
    consent_in(page, server.url)
    page.wait_for_function("document.getElementById('hs-key-link').value.includes('#key=')")
    link = page.locator("#hs-key-link").input_value()
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / "obama_1.jpg"), str(faces_dir / "obama_2.jpg")])
    page.locator("#hs-style-cards").get_by_label("LinkedIn classic · White").check()
    page.wait_for_function("document.querySelectorAll('#hs-styles input:checked').length === 2", timeout=5_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=90_000)
    page.locator("#hs-make").click()
    page.wait_for_function("document.querySelectorAll('#hs-gallery figure.hs-shot').length === 4", timeout=180_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=60_000)
    figures = page.locator("#hs-gallery figure.hs-shot")
    assert page.evaluate(STARRED) == [] and page.locator("#hs-fav-note-box").is_hidden()

    # One star in the gallery, one in the enlarged view: each saves to the session, and the page says so.
    figures.nth(1).locator("[data-hs-star]").click()
    page.wait_for_function(NOTE_SAYS, arg="1 favourite saved with your session", timeout=15_000)
    figures.nth(3).locator("[data-hs-enlarge]").click()
    page.wait_for_selector("#hs-lightbox[open]")
    page.locator("#hs-lightbox [data-hs-lb-star]").click()
    assert page.locator("#hs-lightbox [data-hs-lb-star]").get_attribute("aria-pressed") == "true"
    page.keyboard.press("Escape")
    page.wait_for_function(NOTE_SAYS, arg="2 favourites saved with your session", timeout=15_000)
    ids = [figures.nth(i).get_attribute("data-shot") for i in (1, 3)]
    assert page.evaluate(STARRED) == ids
    # This browser keeps no copy: they are the session's.
    assert page.evaluate("Object.keys(localStorage).filter((k) => k.includes('fav'))") == []
    page.screenshot(path=str(shots / "01-starred.png"), full_page=True)
    first.close()

    # A fresh context (another browser, as far as the studio can tell: no cookie, no storage) on a phone.
    second = browser.new_context(viewport=PHONE, accept_downloads=True)
    page = second.new_page()
    page.goto(link)
    page.wait_for_function("document.querySelectorAll('#hs-gallery figure.hs-shot').length === 4", timeout=60_000)
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate(STARRED) == ids
    figures = page.locator("#hs-gallery figure.hs-shot")
    assert [figures.nth(i).locator("[data-hs-star]").inner_text() for i in range(4)] == [
        "☆ Favourite", "★ Favourite", "☆ Favourite", "★ Favourite"]
    figures.nth(1).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "02-back-in-a-fresh-browser.png"))
    with page.expect_download() as got:
        page.locator("#hs-fav-zip").click()
    names = zipfile.ZipFile(got.value.path()).namelist()
    assert [re.match(r"headshot-(\d\d)-", n).group(1) for n in names] == ["02", "04"]  # gallery numbers 2 and 4

    # Unstarred here, unstarred for the session: a reload shows the one left.
    figures.nth(3).locator("[data-hs-star]").click()
    page.wait_for_function(NOTE_SAYS, arg="1 favourite saved with your session", timeout=15_000)
    page.reload()
    page.wait_for_function("document.querySelectorAll('#hs-gallery figure.hs-shot').length === 4", timeout=60_000)
    assert page.evaluate(STARRED) == ids[:1]

    _erase(page)  # the favourites go with the headshots (tests/pipeline/test_favourites.py: keys and files)
    second.close()
    third = browser.new_context()
    page = third.new_page()
    page.goto(link)
    page.wait_for_function("(document.querySelector('#hs-return-note')?.innerText || '').includes('was erased on')",
                           timeout=30_000)
    assert page.locator("#hs-gallery .hs-shot").count() == 0
    third.close()
