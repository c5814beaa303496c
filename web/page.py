"""The studio page: its layout, top to bottom as a person meets it, and which handler each event calls.

Event settings carry the boundary's rules: no event holds the GPU (generation is admitted, then
watched, see `web.handlers`), so nothing needs Gradio's per-event concurrency to keep it off the
GPU, and consent, upload, delete and verify never wait behind a training run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

import gradio as gr

from privacy.records.notice import RetentionFigures, mode_sentences, short_notice
from web.components import Page, UploadedButton, UploadedFiles
from web.events import (
    PAGE_ONLY_NO_SPINNER,
    PAGE_ONLY_WITH_PROGRESS,
    PUBLIC_NO_SPINNER,
    PUBLIC_SCREENING,
    PUBLIC_WITH_PROGRESS,
    Wiring,
    unguarded_events,
)
from web.handlers import KEEP, KEEP_NOTHING, StudioHandlers
from web.line_words import QUEUE_MODE_NOTE
from web.render import QUEUE_NOTE, render_model_banner, render_my_data
from web.style_cards import render_style_cards
from web.style_cards import style_choices as all_style_choices
from web.visitor.favourites import FavouritesPart
from web.visitor.first_screen import Offer, render_first_screen
from web.visitor.flow import line_id, step_line
from web.visitor.gallery_size import GallerySize
from web.visitor.instant_check import INSTANT_CHECKING, InstantCheck

if TYPE_CHECKING:
    from settings import Settings
    from web.operator_page import OperatorPage
    from web.team_page import TeamPage

# Runs in the browser when the page loads: the return key from the private link's fragment (then removed
# from the address bar) or from this tab's sessionStorage, so a reload restores the session.
ATTACH_JS = """(code) => {
  const m = location.hash.match(/key=([0-9A-Za-z-]+)/);
  if (m) {
    sessionStorage.setItem('hs-return-key', m[1]);
    sessionStorage.setItem('hs-return-key-saved', '1');
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem('hs-return-key') || '';
}"""
# A code typed in by hand is kept for this tab like one from a link.
KEEP_CODE_JS = ("(code) => { if (code && code.trim()) sessionStorage.setItem('hs-return-key', code.trim()); "
                "return code; }")

# On a ZeroGPU Space (settings.zero_gpu) beside the mode choice: why Instant comes first there.
ZERO_GPU_NOTE = ("This copy of the studio runs on a free, shared GPU (ZeroGPU) that lends a GPU for about a minute at "
                 "a time, so Instant mode comes first here. Studio mode trains a model of your face for several "
                 "minutes, longer than one such loan: it needs the studio to run on its own GPU hardware. (On a "
                 "smaller model whose training fits in one loan it runs here; “Make” tells you before anything "
                 "starts.)")

# Events waiting in Gradio's queue, all kinds together: a memory bound only. Who may add events is
# limited per browser and per address at the boundary (web.boundary.middleware), and GPU jobs wait in the
# studio's own line (studio.jobs), bounded by HEADSHOT_QUEUE_SIZE.
GRADIO_QUEUE_EVENTS = 2000


def studio_theme() -> gr.themes.Base:
    """Gradio's default theme with colours that pass WCAG AA contrast (4.5:1 for text; axe-core checks every step
    of the journey): the default's orange primary (2.8:1 with white), red stop (3.8:1) and grey hints (1.9:1)
    fall short."""
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]).set(
        button_primary_background_fill="#1f3a5f", button_primary_background_fill_hover="#16304f",
        button_primary_text_color="#ffffff", button_primary_border_color="#1f3a5f",
        button_cancel_background_fill="#b42318", button_cancel_background_fill_hover="#912018",
        button_cancel_text_color="#ffffff", button_cancel_border_color="#b42318",
        body_text_color_subdued="#5b5b66", color_accent="#1f3a5f")


def build_demo(settings: "Settings", handlers: StudioHandlers, team: "TeamPage | None" = None,
               operator: "OperatorPage | None" = None) -> gr.Blocks:
    """The page; `team` (web.team_page) adds the team notice, the share panel and the admin tab; `operator`
    (web.operator_page) the operator's tab."""
    with gr.Blocks(title="Headshot Studio — private AI headshots", delete_cache=delete_cache_schedule(settings),
                   analytics_enabled=False) as demo:
        page = lay_out(settings, handlers, team, operator)
        # Every event through one path (web.events): the caller resolved first, outputs by name.
        wire = Wiring(page, *(part for part in (team, operator) if part is not None))
        wire.guard(page.session, handlers.owned)
        connect_session_events(demo, wire, page, handlers)
        connect_photo_events(wire, page, handlers)
        connect_job_events(wire, page, handlers)
        connect_end_events(wire, page, handlers)
        page.favourites.connect(wire, page)
        if team is not None:
            team.connect(demo, wire, page)
        if operator is not None:
            operator.connect(demo, wire, page)
    unguarded = unguarded_events(demo)
    if unguarded:  # a page whose events read a state as sent is not served (tests/app/test_event_wiring.py)
        raise RuntimeError(f"events that read a state without resolving their caller: {unguarded}")
    demo.queue(max_size=GRADIO_QUEUE_EVENTS, api_open=False)
    quiet_input_errors(demo, discard_uploads=handlers.uploads.discard_paths)
    return demo


def lay_out(settings: "Settings", handlers: StudioHandlers, team: "TeamPage | None" = None,
            operator: "OperatorPage | None" = None) -> Page:
    """The page as a person meets it: the model's state, then the six steps, then the Verify tab."""
    page = Page()
    styles_by_id = handlers.studio.styles
    style_choices = all_style_choices(styles_by_id)  # each style, each of its background colours, each outfit
    # The id lives here, server-side, beside the browser that owns it (web.handlers.Owned). Losing this
    # state (a closed tab) loses nothing: the return key finds the session again.
    page.session = gr.State(None, time_to_live=settings.headshot_retention_seconds)
    gr.Markdown("# Headshot Studio\nProfessional headshots from your selfies, private by design.",
                elem_id="hs-title")
    # Whether the model can serve, before anything else (studio.model_state): polled until it is settled.
    page.model_banner = gr.HTML(render_model_banner(handlers.studio.warm_up.state, time.time()),
                                elem_id="hs-model-box")
    page.use_demo = gr.Checkbox(label="Use the demo model (random weights: pictures are noise, marked DEMO)",
                                visible=False, elem_id="hs-use-demo")
    page.model_poll = gr.Timer(1.5, active=True)
    with gr.Tabs() as page.tabs:
        with gr.Tab("Studio", id="studio"):
            # The first screen (web.visitor.first_screen): what you get, how, the promise; then consent at once,
            # with the full notice (the same text, from the same code, as before) one tap above it.
            gr.HTML(render_first_screen(styles_by_id, Offer.from_settings(settings),
                                        RetentionFigures.from_settings(settings)), elem_id="hs-hero-box")
            if team is not None:
                team.lay_out_notice()
            with gr.Accordion("Read the full privacy notice", open=False, elem_id="hs-notice-more"):
                gr.Markdown(short_notice(settings), elem_id="hs-notice")
            with gr.Group(elem_id="hs-consent"):
                gr.Markdown("### 1. Your consent")
                page.own = gr.Checkbox(label="These are photos of me (only me)", elem_id="hs-consent-own")
                page.adult = gr.Checkbox(label="I am 18 or older", elem_id="hs-consent-adult")
                page.purpose = gr.Checkbox(label="I agree to the processing described above",
                                           elem_id="hs-consent-purpose")
                page.consent_note = gr.Markdown("Tick all three statements to unlock the upload.",
                                                elem_id="hs-consent-note")
                page.key_panel = gr.HTML(elem_id="hs-keypanel-box")
            with gr.Accordion("Coming back? Enter your private code", open=False, elem_id="hs-return"):
                with gr.Row():
                    page.code_in = gr.Textbox(label="Your private code", max_lines=1, elem_id="hs-code-in", scale=4,
                                              placeholder="XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX")
                    page.open_code = gr.Button("Open my session", elem_id="hs-code-open", scale=1)
            page.return_note = gr.HTML(elem_id="hs-return-note-box")
            instant_first = settings.default_mode == "instant"
            # --- the guided flow (web.visitor.flow): each step's line, then its parts (ids the flow's CSS hides by)
            gr.HTML(step_line("photos"), elem_id=line_id("photos"), elem_classes=["hs-line-box"])
            gr.Markdown("### 2. Instant or Studio\nChoose before you upload; you can change your mind at any time.",
                        elem_id="hs-step-mode-head")
            modes = mode_sentences(settings)
            page.mode = gr.Radio([(modes["instant"], "instant"), (modes["studio"], "studio")],
                                 value=settings.default_mode, label="How your headshots are made", elem_id="hs-mode")
            if settings.zero_gpu:
                gr.Markdown(ZERO_GPU_NOTE, elem_id="hs-zero-gpu-note")
            gr.Markdown(f"### 3. Your photos\nUpload {settings.min_photos}–{settings.max_photos} photos of yourself "
                        "alone: different days, light and angles; no other people, no children, no documents.",
                        elem_id="hs-step-photos-head")
            with gr.Group(elem_id="hs-instant-area", visible=instant_first) as page.instant_photos:
                # Checked in memory as they are added (web.visitor.instant_check), taken once by “Make”: nothing kept.
                page.instant_files = UploadedFiles(label="Your photos for Instant mode (JPEG, PNG, WebP or HEIC): "
                                                   "checked in memory as you add them, never stored",
                                                   file_count="multiple",
                                                   interactive=False, elem_id="hs-instant-upload")
                page.keep = gr.Radio([(f"Keep them for {_days(settings)}, locked with my private key", KEEP),
                                      ("Don't keep anything: show them on this page only (stay on it until they "
                                       "are ready)", KEEP_NOTHING)],
                                     value=KEEP, label="Your finished headshots", elem_id="hs-keep")
                page.instant_check = gr.HTML(label="Photo check", elem_id="hs-instant-check-box")
            with gr.Group(elem_id="hs-photo-area", visible=not instant_first) as page.studio_photos:
                # No file_types: every file, a PDF or an SVG too, reaches ingest and gets its message there.
                page.files = UploadedFiles(label="Add photos (JPEG, PNG, WebP or HEIC)", file_count="multiple",
                                           interactive=False, elem_id="hs-upload")
                page.screening = gr.HTML(label="Photo check", elem_id="hs-screening-box")
                with gr.Row(visible=False, elem_id="hs-photo-tools") as page.photo_tools:
                    # allow_custom_value: the handler judges the id (and deletes a replacement upload first);
                    # Gradio's own check would refuse before it, leaving the upload to the expiry sweep.
                    page.photo_pick = gr.Dropdown(label="Change one photo", choices=[], value=None,
                                                  allow_custom_value=True, elem_id="hs-photo-pick", scale=2)
                    page.remove_one = gr.Button("Remove this photo", variant="secondary", interactive=False,
                                                elem_id="hs-photo-remove", scale=1)
                    page.replace_one = UploadedButton("Replace it with another photo", file_count="single",
                                                      variant="secondary", interactive=False,
                                                      elem_id="hs-photo-replace", scale=1)
            gr.HTML(step_line("style"), elem_id=line_id("style"), elem_classes=["hs-line-box"])
            gr.Markdown("### 4. Pick your styles\nTap a card or a background: each one you pick makes its own "
                        "headshots.", elem_id="hs-step-style-head")
            gr.HTML(render_style_cards(styles_by_id), label="What each style looks like", elem_id="hs-style-cards")
            # The form's own field, hidden (studio.css): the cards' checkboxes set it (studio.js); Make sends it.
            page.styles = gr.CheckboxGroup(style_choices, value=[style_choices[0][1]] if style_choices else [],
                                           label="Styles (some come in other background colours)",
                                           elem_id="hs-styles")
            # Gradio refuses a slider from 1 to 1: with one headshot per style there is nothing to choose, so the
            # slider is hidden (it still sends its value, 1) rather than offering a 2 the server would refuse.
            # Starts at images_per_style, ends at max_images_per_style, lower on ZeroGPU with the reason said
            # (web.visitor.gallery_size).
            size = GallerySize.from_settings(settings)
            page.count = gr.Slider(1, max(size.most, 2), value=size.default, step=1, visible=size.most > 1,
                                   label="Headshots per style", elem_id="hs-count")
            # What Make will give, counted in the browser as styles and the slider change (studio.js).
            gr.HTML(size.count_line(), elem_id="hs-will-get-box")
            gr.HTML(step_line("make"), elem_id=line_id("make"), elem_classes=["hs-line-box"])
            gr.Markdown("### 5. Make your headshots\n" + (QUEUE_MODE_NOTE if settings.queue_url else QUEUE_NOTE),
                        elem_id="hs-step-make-head")
            # On a phone the bar stays at the bottom of the screen while it has an action to offer (studio.css).
            with gr.Row(elem_id="hs-action-bar"):
                page.make = gr.Button("Make my headshots", variant="primary", interactive=False, elem_id="hs-make",
                                      visible=not instant_first)
                page.more = gr.Button("More like this (no new training)", variant="secondary", interactive=False,
                                      elem_id="hs-more", visible=not instant_first)
                page.make_instant = gr.Button("Make my instant headshots", variant="primary", interactive=False,
                                              elem_id="hs-make-instant", visible=instant_first)
                page.stop = gr.Button("Cancel", variant="secondary", interactive=False, elem_id="hs-cancel")
                page.resume = gr.Button("Resume", variant="secondary", visible=False, elem_id="hs-resume")
            page.status = gr.Textbox(label="Status", interactive=False, elem_id="hs-status")
            gr.HTML(step_line("pick"), elem_id=line_id("pick"), elem_classes=["hs-line-box"])
            gr.Markdown(f"### 6. Your headshots\nKept ones are kept for you for {_days(settings)}, locked with "
                        "your private key. You can close this page while they are made; come back with your "
                        "private link to see them. Instant headshots you chose not to keep are only on this page.",
                        elem_id="hs-step-pick-head")
            page.gallery = gr.HTML(label="Your headshots", elem_id="hs-gallery-box")
            page.favourites = FavouritesPart(handlers)  # stars kept with the session (web.visitor.favourites)
            page.favourites.lay_out()
            if team is not None:
                team.lay_out_share()
            gr.Markdown("### 7. Your data")
            page.mydata = gr.HTML(render_my_data(None, None, time.time()), label="Your data", elem_id="hs-mydata-box")
            # Red only while something is stored (handlers.buttons_after_job): an empty session has nothing to lose.
            page.delete = gr.Button("Delete everything now", variant="secondary", elem_id="hs-delete")
            with gr.Group(visible=False, elem_id="hs-confirm-delete") as page.confirm_box:
                page.confirm_text = gr.Markdown(elem_id="hs-confirm-text")
                with gr.Row():
                    page.confirm_yes = gr.Button("Yes, erase everything now", variant="stop", elem_id="hs-delete-yes")
                    page.confirm_no = gr.Button("Keep my data", variant="secondary", elem_id="hs-delete-no")
            page.receipt = gr.HTML(label="Deletion receipt", elem_id="hs-receipt-box")
        with gr.Tab("Verify", id="verify"):
            gr.Markdown("### Is this headshot one of ours?\nDrop any image to check for our content credentials "
                        "(C2PA), invisible watermark and AI-source metadata. The image is checked in memory "
                        "and not kept.")
            page.to_check = UploadedFiles(label="Image to check", file_count="single",
                                          file_types=[".jpg", ".jpeg", ".png", ".webp"], elem_id="hs-verify-file")
            page.verdict = gr.HTML(label="Verification result", elem_id="hs-verdict")
        if team is not None:
            team.lay_out_admin()
        if operator is not None:
            operator.lay_out()
    return page


def _buttons_after_job(wire: Wiring, page: Page, handlers: StudioHandlers) -> dict:
    """After a job's watch ends (done, failed or cancelled), or a page attached to none: Make and More on if
    they can work, Cancel on if a job runs."""
    return wire.event(handlers.buttons_after_job, inputs=[page.session],
                      outputs=[page.make, page.stop, page.more, page.resume, page.delete], **PAGE_ONLY_NO_SPINNER)


def _instant_controls(wire: Wiring, page: Page, handlers: StudioHandlers) -> dict:
    """Instant's upload and Make, on once this browser's session has consent (after consent, a return, a job,
    delete)."""
    return wire.event(handlers.instant_controls, inputs=[page.session], outputs=[page.instant_files, page.make_instant],
                      **PAGE_ONLY_NO_SPINNER)


def connect_session_events(demo: gr.Blocks, wire: Wiring, page: Page, handlers: StudioHandlers) -> None:
    """The model's state, consent, and coming back with the private key."""
    # `.input`: only the person's own ticks; a returning session's boxes are ticked by `attach`.
    # "always_last": three quick ticks on a busy server must end in consent. Gradio's default ("once")
    # drops a tick made while the previous one is still being answered, leaving the upload locked.
    gr.on([page.own.input, page.adult.input, page.purpose.input], **wire.event(
        handlers.consent, inputs=[page.own, page.adult, page.purpose, page.session],
        outputs=[page.session, page.files, page.consent_note, page.mydata, page.key_panel, page.make],
        api_name="consent", trigger_mode="always_last", **PUBLIC_NO_SPINNER)).then(
        **_instant_controls(wire, page, handlers))
    returning = [page.session, page.own, page.adult, page.purpose, page.files, page.make, page.consent_note,
                 page.key_panel, page.return_note, page.gallery, page.status, page.mydata, page.stop, page.screening,
                 page.photo_pick, page.photo_tools]
    watching = wire.event(handlers.watch, inputs=[page.session], outputs=[page.gallery, page.status, page.mydata],
                          show_progress_on=[page.status], **PAGE_ONLY_WITH_PROGRESS)
    attached = demo.load(**wire.event(handlers.attach, inputs=[page.code_in], outputs=returning, js=ATTACH_JS,
                                      api_name="attach", **PUBLIC_NO_SPINNER))
    attached.success(**watching).then(**_buttons_after_job(wire, page, handlers))
    attached.then(**_instant_controls(wire, page, handlers))
    opened = page.open_code.click(**wire.event(handlers.attach, inputs=[page.code_in], outputs=returning,
                                               js=KEEP_CODE_JS, **PAGE_ONLY_WITH_PROGRESS))
    opened.success(**watching).then(**_buttons_after_job(wire, page, handlers))
    opened.then(**_instant_controls(wire, page, handlers))
    page.mode.change(**wire.event(handlers.choose_mode, inputs=[page.mode], outputs=[
        page.studio_photos, page.instant_photos, page.make, page.more, page.make_instant], **PAGE_ONLY_NO_SPINNER))
    page.model_poll.tick(**wire.event(handlers.model_banner, inputs=[page.session], outputs=[
        page.model_banner, page.use_demo, page.make, page.model_poll], **PAGE_ONLY_NO_SPINNER))
    page.use_demo.input(**wire.event(handlers.choose_demo, inputs=[page.use_demo, page.session],
                                     outputs=[page.model_banner, page.make], **PAGE_ONLY_NO_SPINNER))
    demo.unload(handlers.unload)


def connect_photo_events(wire: Wiring, page: Page, handlers: StudioHandlers) -> None:
    """Add photos, remove one, replace one: each answered with the whole photo check."""
    outputs = [page.screening, page.make, page.mydata, page.photo_pick, page.photo_tools, page.more]
    page.files.upload(**wire.event(handlers.upload, inputs=[page.files, page.session],
                                   outputs=[page.screening, page.files, *outputs[1:]], api_name="upload",
                                   **PUBLIC_SCREENING)).then(**_buttons_after_job(wire, page, handlers))
    page.replace_one.upload(**wire.event(handlers.replace_photo, inputs=[page.replace_one, page.photo_pick,
                                                                         page.session],
                                         outputs=outputs, api_name="replace_photo", **PUBLIC_SCREENING))
    page.photo_pick.change(**wire.event(handlers.photo_chosen, inputs=[page.photo_pick],
                                        outputs=[page.remove_one, page.replace_one], **PAGE_ONLY_NO_SPINNER))
    page.remove_one.click(**wire.event(handlers.remove_photo, inputs=[page.photo_pick, page.session],
                                       outputs=outputs, api_name="remove_photo", **PUBLIC_WITH_PROGRESS)).then(
        **_buttons_after_job(wire, page, handlers))


def connect_job_events(wire: Wiring, page: Page, handlers: StudioHandlers) -> None:
    """Make, More like this, Cancel, Resume. Admission and watching only: the job runs in the GPU line."""
    during = wire.event(buttons_during_job, outputs=[page.make, page.stop, page.more], **PAGE_ONLY_NO_SPINNER)
    instant_during = wire.event(lambda: {"make_instant": gr.update(interactive=False),
                                         "stop": gr.update(interactive=True)},
                                outputs=[page.make_instant, page.stop], **PAGE_ONLY_NO_SPINNER)
    watched = dict(outputs=[page.gallery, page.status, page.mydata], show_progress_on=[page.status])
    make_inputs = [page.styles, page.count, page.session]
    page.make.click(**during).then(**wire.event(handlers.generate, inputs=make_inputs, api_name="generate",
                                                **watched, **PUBLIC_WITH_PROGRESS)).then(
        **_buttons_after_job(wire, page, handlers))
    page.more.click(**during).then(**wire.event(handlers.more, inputs=make_inputs, api_name="more_like_this",
                                                **watched, **PUBLIC_WITH_PROGRESS)).then(
        **_buttons_after_job(wire, page, handlers))
    # Instant: the photos, the styles and Make in one request; the photo check answers in the Instant area.
    page.make_instant.click(**instant_during).then(**wire.event(
        handlers.generate_instant, inputs=[page.instant_files, page.styles, page.count, page.keep, page.session],
        outputs=[page.instant_check, page.instant_files, page.gallery, page.status, page.mydata],
        api_name="instant", show_progress_on=[page.status], **PUBLIC_WITH_PROGRESS)).then(
        **_buttons_after_job(wire, page, handlers)).then(**_instant_controls(wire, page, handlers))
    # --- photowords: Instant checks its photos as they are added (web.visitor.instant_check), in memory only ---
    checker = InstantCheck(handlers)
    for changed, check in ((page.instant_files.upload, checker.check), (page.instant_files.delete, checker.removed)):
        changed(**wire.event(check, inputs=[page.instant_files, page.session], outputs=[page.instant_check],
                             **INSTANT_CHECKING))
    page.instant_files.clear(**wire.event(checker.clear, outputs=[page.instant_check], **PAGE_ONLY_NO_SPINNER))
    # --- end photowords ---
    page.stop.click(**wire.event(handlers.cancel, inputs=[page.session], outputs=[page.status], **PAGE_ONLY_NO_SPINNER))
    page.resume.click(**wire.event(handlers.resume, inputs=[page.session], outputs=[page.styles, page.count],
                                   **PAGE_ONLY_NO_SPINNER)).success(**during).then(
        **wire.event(handlers.resume_job, inputs=[page.session], **watched, **PAGE_ONLY_WITH_PROGRESS)).then(
        **_buttons_after_job(wire, page, handlers))


def connect_end_events(wire: Wiring, page: Page, handlers: StudioHandlers) -> None:
    """Delete (asked first, saying what will go; only "Yes" erases: the API's delete_now) and Verify."""
    page.delete.click(**wire.event(handlers.ask_delete, inputs=[page.session],
                                   outputs=[page.confirm_box, page.confirm_text, page.receipt],
                                   **PAGE_ONLY_NO_SPINNER))
    page.confirm_no.click(**wire.event(lambda: {"confirm_box": gr.update(visible=False)},
                                       outputs=[page.confirm_box], **PAGE_ONLY_NO_SPINNER))
    page.confirm_yes.click(**wire.event(
        handlers.delete, inputs=[page.session], api_name="delete_now", **PUBLIC_WITH_PROGRESS,
        outputs=[page.session, page.receipt, page.screening, page.gallery, page.own, page.adult, page.purpose,
                 page.files, page.make, page.mydata, page.key_panel, page.status, page.consent_note,
                 page.return_note, page.confirm_box, page.stop, page.photo_pick, page.photo_tools])).then(
        **_buttons_after_job(wire, page, handlers)).then(**_instant_controls(wire, page, handlers))
    page.to_check.upload(**wire.event(handlers.verify, inputs=[page.to_check], outputs=[page.verdict],
                                      api_name="verify", **PUBLIC_SCREENING))


# One answer for a value the page itself never sends (a style it does not list, a count off the slider, a file
# field that is not a file, the wrong number of inputs): the protocol is an API, and such a request is a caller's.
REFUSED_INPUT = "This request could not be read: one of its values is not one this page offers. Please reload the page."


def quiet_input_errors(demo: gr.Blocks, discard_uploads: Callable[[list[str]], Any] | None = None) -> None:
    """Gradio's own input checks answer a caller's bad value without a traceback (and the value) in the log.

    Gradio 6.31 checks inputs in `Blocks.preprocess_data` (component `preprocess`, file-data validation, input
    count) before any handler runs, and its queue prints the full traceback of every such failure, message and
    sent value included: an unknown style, a count of 10**9 or `[123]` for a file each left one in the server log.
    Those are the caller's errors, not ours: they become one neutral `gr.Error` that prints nothing. Only the
    input side is wrapped; a failure in a handler or in output processing still reaches `shown` / the log.
    """
    check_inputs = demo.preprocess_data

    async def preprocess_data(block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await check_inputs(block_fn, inputs, *args, **kwargs)
        except Exception:
            # The handler will not run, so it cannot delete the uploads this request named (Instant's photos
            # with a keep choice the page never offers): they go now, not after their grace.
            if discard_uploads is not None:
                discard_uploads(list(_named_paths(inputs)))
            raise gr.Error(REFUSED_INPUT, title="Please check", print_exception=False) from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]




def _named_paths(value: Any, depth: int = 0) -> Iterator[str]:
    """Every file path a request's inputs name (FileData dicts, in lists), at any depth a page sends."""
    if depth > 4:
        return
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        yield value["path"]
    elif isinstance(value, (list, tuple)):
        for item in value[:100]:
            yield from _named_paths(item, depth + 1)


def buttons_during_job() -> dict:
    """Runs before the job is admitted: no second click on Make or More, Cancel available."""
    return {"make": gr.update(interactive=False), "stop": gr.update(interactive=True),
            "more": gr.update(interactive=False)}


def _days(settings: "Settings") -> str:
    days = settings.headshot_retention_days
    return f"{days:g} day" + ("" if days == 1 else "s")


def delete_cache_schedule(settings: "Settings") -> tuple[int, int]:
    """Gradio's own cache sweep, a backstop behind the handlers: never older than the shortest retention."""
    age = int(min(settings.upload_retention_seconds, 600))  # an upload not ingested within minutes is an orphan
    return max(60, age // 2), age
