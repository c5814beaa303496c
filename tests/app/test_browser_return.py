"""A session outlives its tab, in Debian's Chromium: save the private link, leave mid-training, come back elsewhere.

consent → the key panel → save the link → upload → start → close the whole browser context while
training → a new context opens the link → sees the job's progress → the gallery → downloads the
ZIP → delete-now → the same link now says the data was erased. A reload at every step loses nothing.
"""

import io
import re
import zipfile

import pytest

from tests.app.conftest import start_server, stop_server
from tests.app.test_browser_journey import CHROMIUM, LAUNCH_ARGS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    # Enough training steps on the tiny model (a few seconds) that a tab can be closed in the middle.
    server, proc = start_server(tmp_path_factory, train_steps="120")
    yield server
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def reload_keeps(page, selector_with_text: tuple[str, str]) -> None:
    """A reload restores the page from this tab's key: the same thing is shown again."""
    selector, text = selector_with_text
    page.reload()
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=30_000)


def test_a_session_survives_closing_the_browser_mid_training_and_opens_with_its_link(slow_server, browser, faces_dir,
                                                                                     artifacts):
    first = browser.new_context(viewport={"width": 1100, "height": 1400}, accept_downloads=True)
    page = first.new_page()
    page.goto(slow_server.url)
    page.wait_for_selector("#hs-consent-own")
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()

    # The key panel: a code, a link built from this page's own address with the key in the fragment.
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)
    code = page.locator("#hs-returnkey").get_attribute("data-code")
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){6}[0-9A-HJKMNP-TV-Z]{4}", code)
    page.wait_for_function("document.getElementById('hs-key-link').value.includes('#key=')")
    link = page.locator("#hs-key-link").input_value()
    assert link == f"{slow_server.url}/#key={code}"
    with page.expect_download() as saved:
        page.locator("[data-hs-save]").click()
    key_file = saved.value.path().read_text()
    assert code in key_file and link in key_file
    reload_keeps(page, ("#hs-keypanel-box", code))  # a reload keeps the consent and the key

    page.locator("#hs-upload input[type=file]").set_input_files([str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
    page.wait_for_selector("#hs-screening", timeout=60_000)
    assert page.locator("#hs-screening [data-accepted=true]").count() == 2
    page.locator("#hs-make").click()
    page.wait_for_function("(document.querySelector('#hs-status textarea')?.value || '').startsWith('Training')",
                           timeout=60_000)
    page.screenshot(path=str(artifacts / "return-01-training.png"), full_page=True)
    first.close()  # the whole browser context goes away in the middle of training

    second = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    page = second.new_page()
    page.goto(link)
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=30_000)
    assert "#key=" not in page.url  # the key left the address bar
    # The job kept running without any page: this page attaches to it (progress, or already the gallery).
    page.wait_for_selector("#hs-gallery .hs-shot img", state="attached", timeout=180_000)
    first_shot = page.locator("#hs-gallery .hs-shot img").first
    first_shot.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#hs-gallery .hs-shot img').naturalWidth > 0", timeout=30_000)
    page.screenshot(path=str(artifacts / "return-02-gallery-elsewhere.png"), full_page=True)
    assert page.locator("#hs-consent-own input").is_checked()
    reload_keeps(page, ("#hs-gallery-box", "AI-generated"))  # the gallery comes back after a reload too

    zip_url = f"{slow_server.url}/{page.locator('#hs-zip').get_attribute('href')}"
    downloaded = page.request.get(zip_url)  # with this browser context's own cookie
    assert downloaded.status == 200
    with zipfile.ZipFile(io.BytesIO(downloaded.body())) as archive:
        assert len(archive.namelist()) == 2

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#hs-delete").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)

    third = browser.new_context()
    page = third.new_page()
    page.goto(link)
    page.wait_for_function("(document.querySelector('#hs-return-note')?.innerText || '').includes('was erased on')",
                           timeout=30_000)
    assert page.locator("#hs-gallery .hs-shot").count() == 0 and page.locator("#hs-returnkey").count() == 0
    page.screenshot(path=str(artifacts / "return-03-erased.png"), full_page=True)
    third.close()
    second.close()
