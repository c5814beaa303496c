"""Every event of the page is wired one way (web.events): the caller resolved before the handler runs, outputs
changed by name, presets that say how an event is exposed.

The page is built as `app.py` builds it (no server: the Blocks' own list of events is what a browser reads),
and every event that reads a state (the studio session, a team admin's or the operator's key, the team a tab
remembers) is checked to resolve each one before its handler runs. The check itself is shown to catch an event
wired around it.
"""

from __future__ import annotations

import gradio as gr
import pytest

import app
from settings import load_settings
from web.boundary.middleware import ListeningPages
from web.events import GUARD_MARK, PAGE_ONLY_NO_SPINNER, Wiring, unguarded_events


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("studio-data")
    settings = load_settings({"HEADSHOT_DATA_DIR": str(data_dir), "HEADSHOT_BASE_MODEL": "tiny-sd",
                              "HEADSHOT_FACE_ADAPTER": "tiny-ip-adapter", "HEADSHOT_DEVICE": "cpu"})
    built = app._assemble(settings)
    yield settings, built
    built.studio.close()


def _reads_states(block_fn) -> tuple[int, ...]:
    return tuple(i for i, component in enumerate(block_fn.inputs) if isinstance(component, gr.State))


def test_every_event_that_reads_a_state_resolves_its_caller_first(parts):
    _, built = parts
    demo = built.demo
    reading = [fn for fn in demo.fns.values() if _reads_states(fn)]
    assert unguarded_events(demo) == []
    # Not vacuous: the studio session, the team admin's key and the operator's key are each read, and each
    # event that reads one resolves exactly the states it reads.
    states = {id(fn.inputs[i]) for fn in reading for i in _reads_states(fn)}
    # The session, the admin's key (and its copy for the admin's timer), the operator's key, the team's name, the
    # digest of the shares the admin's page last drew.
    assert len(reading) >= 29 and len(states) == 6
    for fn in reading:
        assert getattr(fn.fn, GUARD_MARK) == _reads_states(fn), fn.name
    names = {fn.name for fn in reading}
    assert {"consent", "upload", "generate", "generate_instant", "delete", "share", "save_look", "delete_team",
            "create_team", "save", "admin_tick"} <= names  # save: a favourite starred (web.visitor.favourites)


def test_an_event_that_reads_a_state_as_sent_is_reported():
    """The check catches an event wired around the guard, and only that one."""
    with gr.Blocks() as blocks:
        session = gr.State(None)
        status = gr.Textbox()
        wired, bypass = gr.Button(), gr.Button()

        class View:
            pass
        view = View()
        view.session, view.status = session, status
        wire = Wiring(view)
        wire.guard(session, lambda state, request: None)

        def cancel(mine, request: gr.Request):
            return {"status": "Nothing is running."}

        def cancel_as_sent(state):  # the handler would read whatever the state holds
            return "Nothing is running."

        wired.click(**wire.event(cancel, inputs=[session], outputs=[status], **PAGE_ONLY_NO_SPINNER))
        bypass.click(cancel_as_sent, inputs=[session], outputs=[status], api_name="bypass")
    assert unguarded_events(blocks) == ["bypass"]


def test_a_state_with_no_resolver_cannot_be_wired_at_all():
    with gr.Blocks():
        secret = gr.State(None)
        status = gr.Textbox()

        class View:
            pass
        view = View()
        view.secret, view.status = secret, status
        wire = Wiring(view)
        with pytest.raises(ValueError, match="no resolver"):
            wire.event(lambda state, request: {}, inputs=[secret], outputs=[status])
        wire.guard(secret, lambda state, request: state)
        with pytest.raises(TypeError, match="request"):  # the caller is resolved from the request
            wire.event(lambda state: {}, inputs=[secret], outputs=[status])


def test_the_page_is_not_built_with_an_event_that_bypasses_the_guard(parts, monkeypatch):
    import web.page
    settings, built = parts
    handlers = built.team.studio_handlers
    connect_end_events = web.page.connect_end_events

    def with_a_bypass(wire, page, handlers):
        connect_end_events(wire, page, handlers)
        page.delete.click(lambda state: None, inputs=[page.session], api_name="erase_as_sent")

    monkeypatch.setattr(web.page, "connect_end_events", with_a_bypass)
    with pytest.raises(RuntimeError, match="erase_as_sent"):
        web.page.build_demo(settings, handlers)


def test_a_handler_changes_only_the_outputs_it_names():
    with gr.Blocks():
        first, second = gr.Textbox(), gr.Textbox()

        class View:
            pass
        view = View()
        view.first, view.second = first, second
        wire = Wiring(view)
        fn = wire.event(lambda: {"second": "changed"}, outputs=[first, second])["fn"]
        assert fn() == [gr.update(), "changed"]
        only = wire.event(lambda: {"first": "changed"}, outputs=[first])["fn"]
        assert only() == "changed"
        wrong = wire.event(lambda: {"third": "changed"}, outputs=[first, second])["fn"]
        with pytest.raises(gr.Error):  # a name that is no output of the event: a neutral error, logged
            wrong()


def test_the_handlers_read_the_listening_pages_the_boundary_writes(parts):
    _, built = parts
    handlers = built.team.studio_handlers
    assert isinstance(built.listening, ListeningPages) and handlers.listening is built.listening
    assert built.listening.listening("any-page")  # no Boundary built yet: nothing known, every page listens
