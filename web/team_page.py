"""The team parts of the studio page (issue 16): the member's notice and share panel, and the admin's tab.

A tab of the one studio Blocks, not a second Blocks mounted beside it: one page means one config,
one queue and one set of routes, so the boundary (web.boundary.middleware.ROUTES) opens nothing new, every
team event is bound to the browser like the studio's, and enumerating the page's API covers both.
The admin tab stays hidden until the page is opened with an admin link (`#team_admin=…`, read by the
page's script like the return key, then removed from the address bar).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from web.events import PAGE_ONLY_NO_SPINNER, Wiring
from web.team_handlers import OUTFIT_CHOICES, SIZE_CHOICES, TeamHandlers

if TYPE_CHECKING:
    from web.components import Page

# How often an open admin tab looks for new shares (one indexed query; it redraws only when something changed).
ADMIN_TICK_SECONDS = 5.0

# Runs in the browser when the page loads: an invite or admin link's key from the fragment (then removed from the
# address bar), kept for this tab in sessionStorage so that a reload keeps it.
TEAM_LINKS_JS = """(invite, admin) => {
  const take = (name) => { const m = location.hash.match(new RegExp('(?:^#|&)' + name + '=([0-9A-Za-z-]+)'));
                           return m ? m[1] : null; };
  const i = take('team_invite'), a = take('team_admin');
  if (i) sessionStorage.setItem('hs-team-invite', i);
  if (a) sessionStorage.setItem('hs-team-admin', a);
  if (i || a) history.replaceState(null, '', location.pathname + location.search);
  return [sessionStorage.getItem('hs-team-invite') || '', sessionStorage.getItem('hs-team-admin') || ''];
}"""


class TeamPage:
    """The team components, laid out where `web.page.lay_out` calls each part, and their events."""

    def __init__(self, handlers: TeamHandlers) -> None:
        self.handlers = handlers

    # --- layout: called by web.page.lay_out at three places -------------------------------------------
    def lay_out_notice(self) -> None:
        """In the Studio tab, before consent: the invite's word, then the team notice once joined."""
        self.invite_code = gr.Textbox(visible=False, elem_id="hs-team-invite-code")
        self.admin_code = gr.Textbox(visible=False, elem_id="hs-team-admin-code")
        self.notice = gr.HTML(elem_id="hs-team-notice-box")
        # Shown only when a session reopened in this tab reads an invite: joining is then a click of its own.
        self.join_button = gr.Button("Join the team", variant="primary", visible=False, elem_id="hs-team-join")
        # The team this tab's session belongs to, so that its deletion can tell the page to forget the invite.
        self.joined = gr.State(None)

    def lay_out_share(self) -> None:
        """Under the gallery, for a member: share chosen headshots under a name; withdraw a share."""
        with gr.Group(visible=False, elem_id="hs-team-share") as self.share_box:
            gr.Markdown("### Share with your team\nOnly what you choose here reaches your team, sealed so that only "
                        "its admin can open it. Withdrawing erases the team's copy at once.")
            with gr.Row():
                # The thumbnails to tick (web.team_render.render_share_picker); team.js copies the ticked ids into
                # the share field, hidden (studio.css), which the Share button sends.
                self.share_thumbs = gr.HTML(elem_id="hs-team-share-thumbs-box")
            with gr.Row():
                self.share_pick = gr.Textbox(label="Headshots to share (their ids)", max_lines=1,
                                             elem_id="hs-team-share-pick")
                self.share_name = gr.Textbox(label="The name your team sees with them", max_lines=1,
                                             elem_id="hs-team-share-name", scale=2)
                self.share_button = gr.Button("Share with the team", variant="primary", interactive=False,
                                              elem_id="hs-team-share-button", scale=1)
            self.my_shares = gr.HTML(elem_id="hs-my-shares-box")
            with gr.Row():
                self.withdraw_pick = gr.Dropdown(label="Shared headshot", choices=[], value=None,
                                                 allow_custom_value=True, elem_id="hs-team-withdraw-pick", scale=3)
                self.withdraw_button = gr.Button("Withdraw (erases the team's copy now)", variant="secondary",
                                                 elem_id="hs-team-withdraw", scale=1)

    def lay_out_admin(self) -> None:
        """The admin's tab, hidden until an admin link is opened."""
        styles = self.handlers.style_names
        with gr.Tab("Team admin", id="team-admin", visible=False) as self.admin_tab:
            self.admin_state = gr.State(None, time_to_live=12 * 3600)
            self.header = gr.HTML(elem_id="hs-team-admin-box")
            gr.Markdown("### The team's look\nEvery member's new runs use it; runs already made keep theirs.")
            with gr.Row():
                self.look_style = gr.Dropdown([(name, style_id) for style_id, name in styles.items()],
                                              label="Style", elem_id="hs-team-look-style")
                self.look_background = gr.Textbox(label="Background colour (exact hex, e.g. #1f2a44)", max_lines=1,
                                                  elem_id="hs-team-look-background")
            self.look_outfits = gr.CheckboxGroup(OUTFIT_CHOICES, label="Allowed outfits",
                                                 elem_id="hs-team-look-outfits")
            with gr.Row():
                self.look_size = gr.Radio(SIZE_CHOICES, label="Output size", elem_id="hs-team-look-size")
                self.look_retention = gr.Slider(1, 90, step=1, value=30, label="Keep shared headshots for (days)",
                                                elem_id="hs-team-look-retention")
            self.save_look = gr.Button("Save the look", variant="primary", elem_id="hs-team-look-save")
            gr.Markdown("### Invite links")
            with gr.Row():
                self.invite_label = gr.Textbox(label="Label (who it is for)", max_lines=1,
                                               elem_id="hs-team-invite-label")
                self.invite_days = gr.Slider(1, 90, step=1, value=7, label="Valid for (days)",
                                             elem_id="hs-team-invite-days")
                self.invite_uses = gr.Number(value=10, minimum=1, maximum=1000, precision=0, label="Uses at most",
                                             elem_id="hs-team-invite-uses")
            self.make_invite = gr.Button("Make an invite link", variant="primary", elem_id="hs-team-invite-make")
            self.new_invite = gr.HTML(elem_id="hs-team-invite-new-box")
            self.invites = gr.HTML(elem_id="hs-team-invites-box")
            with gr.Row():
                self.revoke_pick = gr.Dropdown(label="Open invite link", choices=[], value=None,
                                               allow_custom_value=True, elem_id="hs-team-revoke-pick", scale=3)
                self.revoke = gr.Button("Revoke it", variant="secondary", elem_id="hs-team-revoke", scale=1)
            gr.Markdown("### Shared headshots")
            self.refresh = gr.Button("Refresh", variant="secondary", elem_id="hs-team-refresh")
            # While this tab holds an admin key: a look every few seconds, redrawing only when a member shared,
            # withdrew or joined (web.team_handlers.admin_tick). Its own state, resolved without a refusal.
            self.admin_timer = gr.Timer(ADMIN_TICK_SECONDS, active=False)
            self.admin_watch = gr.State(None, time_to_live=12 * 3600)
            self.shares_seen = gr.State(None)
            self.shares = gr.HTML(elem_id="hs-team-shares-box")
            gr.Markdown("### Delete the team")
            self.delete = gr.Button("Delete the team", variant="stop", elem_id="hs-team-delete")
            with gr.Group(visible=False, elem_id="hs-team-confirm") as self.confirm_box:
                self.confirm_text = gr.Markdown(elem_id="hs-team-confirm-text")
                with gr.Row():
                    self.confirm_yes = gr.Button("Yes, delete the team now", variant="stop",
                                                 elem_id="hs-team-delete-yes")
                    self.confirm_no = gr.Button("Keep the team", variant="secondary", elem_id="hs-team-delete-no")
            self.receipt = gr.HTML(elem_id="hs-team-receipt-box")

    # --- events -------------------------------------------------------------------------------------
    def connect(self, demo: gr.Blocks, wire: Wiring, page: "Page") -> None:
        h = self.handlers
        wire.guard(self.admin_state, h.admin_of)  # the team this tab's admin key opens, or a refusal
        wire.plain(self.joined)  # a team's name the page remembers, not a credential
        wire.guard(self.admin_watch, h.admin_watch_of)  # the same key, for the timer: None rather than a refusal
        wire.plain(self.shares_seen)  # a digest of share ids the page last drew, not a credential
        view = [self.header, self.look_style, self.look_background, self.look_outfits, self.look_size,
                self.look_retention, self.invites, self.revoke_pick, self.shares]
        panel = [self.share_pick, self.share_thumbs, self.share_button, self.my_shares, self.withdraw_pick]
        # The links' keys land in two hidden fields, in the browser alone (no request for a page without a link);
        # an admin key that lands there is then presented.
        demo.load(None, inputs=[self.invite_code, self.admin_code], outputs=[self.invite_code, self.admin_code],
                  js=TEAM_LINKS_JS, **PAGE_ONLY_NO_SPINNER)
        self.admin_code.change(**wire.event(h.open_admin, inputs=[self.admin_code],
                                            outputs=[self.admin_state, self.admin_tab, page.tabs, *view,
                                                     self.admin_watch, self.shares_seen, self.admin_timer],
                                            **PAGE_ONLY_NO_SPINNER))
        member = dict(inputs=[self.invite_code, page.session, self.joined],
                      outputs=[self.notice, self.share_box, *panel, page.styles, self.invite_code, self.joined,
                               self.join_button], **PAGE_ONLY_NO_SPINNER)
        # One listener for both, each run after the last one's answer with the values of then ("always_last"):
        # two answers in flight at once could land in either order, and a notice computed before the session
        # reopened ("tick the statements below") would stay over the one computed after it.
        gr.on([page.session.change, self.invite_code.change], trigger_mode="always_last",
              **wire.event(h.on_session, **member))  # the invite field changes when the page's own load read the link
        self.join_button.click(**wire.event(h.join_team, **member))
        page.gallery.change(**wire.event(h.share_panel, inputs=[page.session], outputs=panel, **PAGE_ONLY_NO_SPINNER))
        self.share_pick.change(**wire.event(lambda chosen: {"share_button": gr.update(interactive=bool(chosen))},
                                            inputs=[self.share_pick], outputs=[self.share_button],
                                            **PAGE_ONLY_NO_SPINNER))
        self.share_button.click(**wire.event(h.share, inputs=[self.share_pick, self.share_name, page.session],
                                             outputs=panel, **PAGE_ONLY_NO_SPINNER))
        self.withdraw_button.click(**wire.event(h.withdraw, inputs=[self.withdraw_pick, page.session], outputs=panel,
                                                **PAGE_ONLY_NO_SPINNER))
        admin = dict(outputs=view, **PAGE_ONLY_NO_SPINNER)
        self.save_look.click(**wire.event(h.save_look, inputs=[self.look_style, self.look_background,
                                                               self.look_outfits, self.look_size, self.look_retention,
                                                               self.admin_state], **admin))
        self.make_invite.click(**wire.event(h.make_invite, inputs=[self.invite_label, self.invite_days,
                                                                   self.invite_uses, self.admin_state],
                                            outputs=[self.new_invite, *view], **PAGE_ONLY_NO_SPINNER))
        self.revoke.click(**wire.event(h.revoke_invite, inputs=[self.revoke_pick, self.admin_state], **admin))
        self.refresh.click(**wire.event(h.admin_view, inputs=[self.admin_state], **admin))
        self.admin_timer.tick(**wire.event(h.admin_tick, inputs=[self.shares_seen, self.admin_watch],
                                           outputs=[self.header, self.shares, self.shares_seen, self.admin_timer],
                                           **PAGE_ONLY_NO_SPINNER))
        self.delete.click(**wire.event(h.ask_delete_team, inputs=[self.admin_state],
                                       outputs=[self.confirm_box, self.confirm_text], **PAGE_ONLY_NO_SPINNER))
        self.confirm_no.click(**wire.event(lambda: {"confirm_box": gr.update(visible=False)},
                                           outputs=[self.confirm_box], **PAGE_ONLY_NO_SPINNER))
        self.confirm_yes.click(**wire.event(h.delete_team, inputs=[self.admin_state],
                                            outputs=[self.admin_state, self.admin_watch, self.admin_timer,
                                                     self.confirm_box, self.receipt, self.header, self.shares],
                                            **PAGE_ONLY_NO_SPINNER))
        demo.unload(h.unload)
