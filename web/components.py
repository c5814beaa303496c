"""The studio page's components: `Page`, what its events read and write (the names handlers return), and
the upload fields that leave nothing behind in Gradio's cache.

Apart from the layout (web.page) so that the page's parts (web.team_page, web.operator_page) can name the
studio's components without importing the page that lays them out.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


class UploadedFiles(gr.File):
    """gr.File that hands the handler the sealed upload's path and creates nothing else.

    Gradio 6.31's File.preprocess (type="filepath") opens a NamedTemporaryFile(delete=False) in the
    cache for every uploaded file and never uses or removes it; those would outlive the upload.
    `is_template` keeps the stock File front end.
    """

    is_template = True

    def _process_single_file(self, f: Any) -> Any:
        # No file-type check here: a refusal at this point would skip the handler and its cleanup,
        # leaving the upload behind. Ingest decides by content anyway, and then the upload is deleted.
        from gradio.utils import NamedString
        return NamedString(f.path)


class UploadedButton(gr.UploadButton):
    """gr.UploadButton with the same fix as `UploadedFiles` (its preprocess leaves a cache file per upload too)."""

    is_template = True

    def _process_single_file(self, f: Any) -> Any:
        from gradio.utils import NamedString
        return NamedString(f.path)


class Page:
    """The components events read or write, set by `lay_out` as it builds the page top to bottom."""

    session: gr.State
    model_banner: gr.HTML
    use_demo: gr.Checkbox
    model_poll: gr.Timer
    code_in: gr.Textbox
    open_code: gr.Button
    return_note: gr.HTML
    own: gr.Checkbox
    adult: gr.Checkbox
    purpose: gr.Checkbox
    consent_note: gr.Markdown
    key_panel: gr.HTML
    mode: gr.Radio
    studio_photos: gr.Group
    instant_photos: gr.Group
    instant_files: gr.File
    instant_check: gr.HTML
    keep: gr.Radio
    files: gr.File
    screening: gr.HTML
    photo_tools: gr.Row
    photo_pick: gr.Dropdown
    remove_one: gr.Button
    replace_one: gr.UploadButton
    styles: gr.CheckboxGroup
    count: gr.Slider
    make: gr.Button
    more: gr.Button
    make_instant: gr.Button
    stop: gr.Button
    resume: gr.Button
    status: gr.Textbox
    gallery: gr.HTML
    mydata: gr.HTML
    delete: gr.Button
    confirm_box: gr.Group
    confirm_text: gr.Markdown
    confirm_yes: gr.Button
    confirm_no: gr.Button
    receipt: gr.HTML
    to_check: gr.File
    verdict: gr.HTML
    tabs: gr.Tabs
