"""A session outlives its tab, in Debian's Chromium: save the private link, leave mid-training, come back elsewhere.

consent → the key panel → save the link → upload → start → close the whole browser context while
training → a new context opens the link → sees the job's progress → the gallery → downloads the
ZIP → delete-now → the same link now says the data was erased. A reload at every step loses nothing.
"""

import io
import re
import zipfile

import pytest

from tests.app.conftest import consent_in, start_server, stop_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    # Enough training steps on the tiny model (a few seconds) that a tab can be closed in the middle.
    server, proc = start_server(tmp_path_factory, train_steps="120")
    yield server
    stop_server(proc)




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
    consent_in(page, slow_server.url)

    # The key panel: a code, a link built from this page's own address with the key in the fragment.
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

    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
    page.wait_for_selector("#hs-screening", timeout=60_000)
    assert page.locator("#hs-screening [data-accepted=true]").count() == 2
    reload_keeps(page, ("#hs-mydata-box", "Your photos, face measurements and trained model"))  # the photos stay
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=30_000)
    page.locator("#hs-make").click()
    page.wait_for_function("(document.querySelector('#hs-status textarea')?.value || '').startsWith('Training')",
                           timeout=60_000)
    page.reload()  # mid-training: the page attaches to the running job again and follows it
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

    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    page.reload()  # after erasure: this tab's key now says what happened
    page.wait_for_function("(document.querySelector('#hs-return-note')?.innerText || '').includes('was erased on')",
                           timeout=30_000)

    third = browser.new_context()
    page = third.new_page()
    page.goto(link)
    page.wait_for_function("(document.querySelector('#hs-return-note')?.innerText || '').includes('was erased on')",
                           timeout=30_000)
    assert page.locator("#hs-gallery .hs-shot").count() == 0 and page.locator("#hs-returnkey").count() == 0
    page.screenshot(path=str(artifacts / "return-03-erased.png"), full_page=True)
    third.close()
    second.close()


def closing_warns(page) -> bool:
    """Try to leave the page; True if the browser asked "leave this site?" (the dialog is dismissed: we stay)."""
    asked = []

    def on_dialog(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    from playwright.sync_api import Error as PlaywrightError

    page.on("dialog", on_dialog)
    page.close(run_before_unload=True)
    for _ in range(20):  # the page closes by itself, or stays after the dismissed question
        if page.is_closed() or asked:
            break
        try:
            page.wait_for_timeout(100)
        except PlaywrightError:  # closed meanwhile
            break
    if not page.is_closed():
        page.remove_listener("dialog", on_dialog)
    return asked == ["beforeunload"] and not page.is_closed()


def test_leaving_warns_only_while_something_is_at_stake_and_the_key_is_unsaved(slow_server, browser, faces_dir):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    consent_in(page, slow_server.url)
    assert not closing_warns(page)  # consent only: nothing to lose yet, leaving is free
    assert page.is_closed()

    page = context.new_page()
    consent_in(page, slow_server.url)  # the same tab's key is gone with the page: a new session
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
    page.wait_for_selector("#hs-screening", timeout=60_000)
    page.locator("#hs-make").click()
    page.wait_for_function("/Waiting|Training|Preparing|Starting/.test("
                           "document.querySelector('#hs-status textarea')?.value || '')", timeout=60_000)
    assert closing_warns(page)  # a job runs and the key is unsaved: the browser asks first
    with page.expect_download():
        page.locator("[data-hs-save]").click()
    assert not closing_warns(page)  # key saved: leaving is free, the job goes on without the page
    context.close()


def test_a_reload_the_moment_the_key_appears_keeps_the_session(server, browser):
    """The page keeps the key as soon as its panel appears: a reload right after consent reopens the same session."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    consent_in(page, server.url)
    code = page.locator("#hs-returnkey").get_attribute("data-code")
    page.reload()  # at once: no time for a timer to have run
    page.wait_for_selector(f"#hs-returnkey[data-code='{code}']", timeout=20_000)
    assert "Welcome back" in page.locator("body").inner_text()
    context.close()
