"""The operator's tab of the studio page: create a team and copy its admin link, once.

A tab of the one studio Blocks (as the team admin's is, web.team_page): one config, one queue, one
set of routes, so the boundary opens nothing new and enumerating the page's API covers it. The tab
stays hidden until the page is opened with an operator link (`#operator=…`, read by the page's
script, kept for this tab in sessionStorage, removed from the address bar) and the key is the one
minted on the server (`python cli.py operator-link`). With no key minted there is no operator: the
tab never shows and its events refuse everyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from privacy.teams.teams import MAX_TEAM_NAME
from web.events import PAGE_ONLY_NO_SPINNER, Wiring
from web.operator_handlers import OPERATOR_TAB, OperatorHandlers

if TYPE_CHECKING:
    from web.components import Page

OPERATOR_JS = (Path(__file__).parent / "operator.js").read_text(encoding="utf-8")  # served with studio.js
# Runs in the browser when the page loads: the operator key from the fragment (then removed from the address bar),
# kept for this tab in sessionStorage so that a reload keeps it. No request is made for a page without one.
OPERATOR_LINK_JS = """(code) => {
  const m = location.hash.match(/(?:^#|&)operator=([0-9A-Za-z-]+)/);
  if (m) {
    sessionStorage.setItem('hs-operator', m[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem('hs-operator') || '';
}"""


class OperatorPage:
    """The operator components, laid out by `web.page.lay_out` among the tabs, and their events."""

    def __init__(self, handlers: OperatorHandlers) -> None:
        self.handlers = handlers

    def lay_out(self) -> None:
        with gr.Tab("Operator", id=OPERATOR_TAB, visible=False) as self.tab:
            self.state = gr.State(None, time_to_live=12 * 3600)
            self.code = gr.Textbox(visible=False, elem_id="hs-operator-code")
            self.header = gr.HTML(elem_id="hs-operator-box")
            gr.Markdown("### Create a team\nThe team's admin sets its look and invites its members; you see none of "
                        "what members make or share.")
            with gr.Row():
                self.name = gr.Textbox(label="The team's name (e.g. the company's)", max_lines=1,
                                       max_length=MAX_TEAM_NAME, elem_id="hs-operator-team-name", scale=3)
                self.create = gr.Button("Create the team", variant="primary", elem_id="hs-operator-create", scale=1)
            self.new_team = gr.HTML(elem_id="hs-operator-team-new-box")

    def connect(self, demo: gr.Blocks, wire: Wiring, page: "Page") -> None:
        h = self.handlers
        wire.guard(self.state, h.operator_of)  # the operator key this tab presented, checked again, or a refusal
        demo.load(None, inputs=[self.code], outputs=[self.code], js=OPERATOR_LINK_JS, **PAGE_ONLY_NO_SPINNER)
        self.code.change(**wire.event(h.open_operator, inputs=[self.code],
                                      outputs=[self.state, self.tab, page.tabs, self.header], **PAGE_ONLY_NO_SPINNER))
        self.create.click(**wire.event(h.create_team, inputs=[self.name, self.state],
                                       outputs=[self.new_team, self.name], **PAGE_ONLY_NO_SPINNER))
