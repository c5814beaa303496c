"""A page that meets the request limit waits and goes on; it does not lose the click (Debian's Chromium).

The boundary answers a request over its browser's or its network's budget with 429 and a Retry-After
(web.boundary.middleware); Gradio's client would drop that click. The page's script sends a refused queue join,
or the opening of its event stream, again once the wait has passed (web/studio.js). A flood is not retried
into success: what it sent beyond the budget stays refused.
"""

import pytest

from tests.app.conftest import start_server, stop_server

pytestmark = pytest.mark.browser

# Sent with XMLHttpRequest, which the page's retry (a wrapper of fetch) leaves alone: every request is
# answered once, 429 included, and charged to this browser's budget like any join.
FLOOD = """async (count) => {
  const one = () => new Promise((done) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/gradio_api/queue/join');
    request.setRequestHeader('Content-Type', 'application/json');
    request.onloadend = () => done([request.status, request.getResponseHeader('Retry-After')]);
    request.send('{}');
  });
  return Promise.all(Array.from({length: count}, one));
}"""


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    # Its own server: the flood spends part of 127.0.0.1's address budget, which other modules' pages share.
    server, proc = start_server(tmp_path_factory)
    yield server
    stop_server(proc)


def test_a_click_refused_by_the_request_limit_is_sent_again_after_the_wait_and_answered(own_server, browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(own_server.url)
    page.wait_for_selector("#hs-consent-own")

    answers = page.evaluate(FLOOD, 90)  # more than this browser's burst of 60
    refused = [retry_after for status, retry_after in answers if status == 429]
    assert refused and all(int(seconds) >= 1 for seconds in refused)  # the limit was met, with a wait to honour

    for box in ("own", "adult", "purpose"):  # clicks while the budget is empty: their joins meet 429 first
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=30_000)
    assert page.locator("#hs-returnkey").get_attribute("data-code")
    context.close()
