"""What each event of the team pages does (issue 16): the member's invite, shares and withdrawals; the admin's tab.

Two kinds of caller, each proven the same way the studio proves its owners:

* **A member** is the studio session in this tab's state, owned by this browser's cookie
  (`StudioHandlers.owned`, resolved before the handler runs: web.events); sharing opens one of
  *their own* kept headshots with their own key (present while their page is open) and seals a
  copy to the team.
* **The admin** is whoever presented the team's admin key in this tab (`AdminState`, server-side,
  bound to the browser's cookie). Every admin act starts again from the key (`admin_of`, the
  resolver of the admin's state, run before the handler), so a deleted team or a wrong key opens
  nothing. `TeamAdmin` reaches shares and nothing else, so no
  handler here can hand a team key a selfie, a photo check or an unshared headshot.

Images, the ZIP and the CSV go through `/media/<token>` grants bound to the browser's cookie, and
open only while the admin's page holds the key (`admin_presence`, released when the page goes).
Presenting an admin key or an invite is limited per browser and per address like a return key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from errors import ConsentRequired, InviteRefused, NotInTeam, OwnerKeyRequired, TeamKeyRefused, UserError
from privacy.store.owner_presence import OwnerPresence
from privacy.store.return_keys import parse_bearer_key
from privacy.teams.team_look import OUTFITS, SIZES
from privacy.teams.team_seal import AdminKey
from privacy.teams.teams import TeamAdmin  # at run time: Gradio reads the handlers' annotations to pass the request
from web.boundary.rate_limit import ADDRESS_KEY_LIMIT, CLIENT_KEY_LIMIT
from web.boundary.web_access import Grant, MediaGrants, media_type
from web.events import Owned, session_of
from web.handlers import StudioHandlers
from web.team_render import (
    invite_choices,
    render_admin_header,
    render_admin_refused,
    render_admin_shares,
    render_invite_pending,
    render_invite_refused,
    render_invite_to_join,
    render_invites,
    render_my_shares,
    render_new_invite,
    render_share_picker,
    render_team_left,
    render_team_notice,
    render_team_receipt,
    withdraw_choices,
)

DAY = 86400.0
TEAM_SHARE, TEAM_ZIP, TEAM_CSV = "team_share", "team_zip", "team_csv"
TEAM_MEDIA = (TEAM_SHARE, TEAM_ZIP, TEAM_CSV)
# The favourites ZIP's query, bounded like the person's own (app.py): 500 share ids of 32 hex characters.
MAX_FAVOURITES, MAX_FAVOURITES_QUERY = 500, 500 * 33
MAX_SHARE_FIELD = 50 * 65  # the share field: at most 50 headshot ids (32 hex characters each) and their commas
ADMIN_GONE = "This admin page has closed its key. Open your team admin link again."


@dataclass(frozen=True)
class AdminState:
    """The team admin key presented in this tab, with the browser that presented it (never shown, never logged)."""

    owner: str
    team_id: str
    key: AdminKey = field(repr=False)


def team_scope(team_id: str) -> str:
    """The grant and presence key of a team's media: never a studio session id (those are hex without a prefix)."""
    return f"team:{team_id}"


class TeamHandlers:
    """The team events; `web.team_page` lays the components out and connects them."""

    def __init__(self, studio_handlers: StudioHandlers, grants: MediaGrants) -> None:
        self.studio_handlers, self.grants = studio_handlers, grants
        self.studio = studio_handlers.studio
        self.teams = self.studio.teams
        self.admin_presence = OwnerPresence()  # admin keys of open admin pages, for their media only
        self.key_limits = studio_handlers.limit_pair(CLIENT_KEY_LIMIT, ADDRESS_KEY_LIMIT,
                                                     "attempts to open a team link")
        self.style_names = {style_id: style.name for style_id, style in self.studio.styles.items()}

    # --- the member -----------------------------------------------------------------------------------
    def on_session(self, invite_code: str | None, mine: Owned | None, joined: Any, request: gr.Request):
        """The page's session changed (consent, a return, delete): join the invite's team if one was opened.

        The invite is joined here only for a session this page's own consent started, the invite's notice in
        view (Owned.started_here). A session reopened with its return key in a tab that reads an invite is
        asked first: the notice says what joining means, and "Join the team" (`join_team`) joins.

        `joined` is the team this tab's session was a member of (server-side state). When that session goes
        (its owner's "Delete everything now"), the page forgets the invite (the hidden field here, its
        sessionStorage in team.js), so that consenting again starts a session outside the team instead of
        silently spending another use of the link; the notice says so, and that opening the link again rejoins.
        A member's style choice is hidden: the team's look decides.
        """
        started_here = mine is not None and mine.started_here
        return self._member_view(session_of(mine), invite_code, joined, request, join_now=started_here)

    def join_team(self, invite_code: str | None, mine: Owned | None, joined: Any, request: gr.Request):
        """"Join the team", clicked in a reopened session that read an invite (changes what `on_session` does)."""
        return self._member_view(session_of(mine), invite_code, joined, request, join_now=True)

    def _member_view(self, session_id: str | None, invite_code: str | None, joined: Any, request: gr.Request, *,
                     join_now: bool) -> dict:
        handlers = self.studio_handlers
        # Outside a team: no share panel, the style choice back, no join button, no team remembered.
        outside = {"share_box": gr.update(visible=False), "my_shares": "", "styles": gr.update(visible=True),
                   "joined": None, "join_button": gr.update(visible=False)}
        if session_id is None and isinstance(joined, str) and joined:
            return {"notice": render_team_left(joined), **outside, "invite_code": ""}
        if session_id is None:
            return {"notice": self._peek(invite_code, request), **outside}
        membership = self.teams.membership(session_id)
        if membership is None and invite_code:
            self.key_limits.charge(handlers.client_of(request), handlers.address_of(request))
            try:
                if not join_now:
                    peek = self.teams.peek(invite_code)
                    return {"notice": render_invite_to_join(peek), **outside,
                            "join_button": gr.update(visible=True, value=f"Join {peek.team_name}")}
                membership = self.teams.redeem(session_id, invite_code)
            except InviteRefused as refused:
                return {"notice": render_invite_refused(refused.message), **outside}
        if membership is None:
            return {"notice": "", **outside}
        return {"notice": render_team_notice(membership, self.style_names), "share_box": gr.update(visible=True),
                **self._share_panel(session_id, membership.team_name, handlers.client_of(request)),
                "styles": gr.update(visible=False),
                "joined": membership.team_name, "join_button": gr.update(visible=False)}

    def _peek(self, invite_code: str | None, request: gr.Request) -> Any:
        """Before consent: the invite's team, retention and what it never receives; or why the link cannot be used.

        Spends no use (a read only), but is a key lookup like any other: limited per browser and per address.
        """
        if not invite_code:
            return gr.update()  # no link (or one just forgotten): whatever the notice says stays
        handlers = self.studio_handlers
        self.key_limits.charge(handlers.client_of(request), handlers.address_of(request))
        try:
            return render_invite_pending(self.teams.peek(invite_code))
        except InviteRefused as refused:
            return render_invite_refused(refused.message)

    def share_panel(self, mine: Owned | None, request: gr.Request):
        """After the gallery changes: what can be shared and what is shared."""
        session_id = session_of(mine)
        membership = self.teams.membership(session_id) if session_id else None
        if membership is None:
            return {}
        return self._share_panel(session_id, membership.team_name, self.studio_handlers.client_of(request))

    def _share_panel(self, session_id: str, team_name: str, client: str | None) -> dict:
        owner_key = self.studio_handlers.presence.key_of(session_id)
        try:
            shots = self.studio.headshots(session_id, owner_key) if client is not None else []
        except (OwnerKeyRequired, UserError):
            shots = []
        mine = self.teams.my_shares(session_id)
        # Thumbnails through the gallery's own grants: this browser's, for this session's headshots only.
        tokens = [self.grants.grant(client, session_id, "headshot", shot.blob_id) for shot in shots]
        # The Share button comes on once a thumbnail is ticked (share_pick's change, web.team_page).
        return {"share_pick": "", "share_thumbs": render_share_picker(shots, tokens, self.style_names),
                "share_button": gr.update(value=f"Share with {team_name}", interactive=False),
                "my_shares": render_my_shares(mine, team_name, self.style_names),
                "withdraw_pick": gr.update(choices=withdraw_choices(mine, self.style_names), value=None)}

    def share(self, blob_ids: Any, name: str | None, mine: Owned | None, request: gr.Request):
        """Seal a copy of each chosen headshot to the team, under the name typed."""
        session_id = self._member(mine)
        if isinstance(blob_ids, str):  # the page's field: the ticked thumbnails' ids, comma-separated (team.js)
            blob_ids = blob_ids[:MAX_SHARE_FIELD].split(",")
        chosen = [b.strip() for b in (blob_ids if isinstance(blob_ids, list) else [blob_ids])
                  if isinstance(b, str) and b.strip()][:50]
        if not chosen:
            raise UserError("Choose the headshot(s) to share first.", code="nothing_chosen")
        owner_key = self.studio_handlers.presence.key_of(session_id)
        if owner_key is None:
            raise OwnerKeyRequired("Please open your private link (or enter your code) on this page first.")
        for blob_id in dict.fromkeys(chosen):
            self.studio.share_with_team(session_id, blob_id, name or "", owner_key)
        return self._share_panel(session_id, self.teams.membership(session_id).team_name,
                                 self.studio_handlers.client_of(request))

    def withdraw(self, share_id: Any, mine: Owned | None, request: gr.Request):
        """Erase the team's copy of one share at once."""
        session_id = self._member(mine)
        if not isinstance(share_id, str) or not share_id:
            raise UserError("Choose the shared headshot to withdraw first.", code="nothing_chosen")
        self.teams.withdraw(session_id, share_id)
        return self._share_panel(session_id, self.teams.membership(session_id).team_name,
                                 self.studio_handlers.client_of(request))

    def _member(self, mine: Owned | None) -> str:
        session_id = session_of(mine)
        if session_id is None:
            raise ConsentRequired()
        if self.teams.membership(session_id) is None:
            raise NotInTeam()
        return session_id

    # --- the admin ------------------------------------------------------------------------------------
    def open_admin(self, admin_code: str | None, request: gr.Request):
        """Present the admin key from the link's fragment: the admin tab, shown and chosen, with everything it
        shows. Nothing changes for a page opened without one."""
        if not admin_code:
            return {"admin_state": None}
        handlers = self.studio_handlers
        client = handlers.client_of(request)
        if client is None:
            raise ConsentRequired("Please reload the studio page.")
        self.key_limits.charge(client, handlers.address_of(request))
        key = parse_bearer_key(admin_code, AdminKey)
        try:
            admin = self.teams.admin(key)
        except TeamKeyRefused as refused:
            return {"admin_state": None, "admin_tab": gr.update(visible=True),
                    "tabs": gr.Tabs(selected="team-admin"), "header": render_admin_refused(refused.message)}
        state = AdminState(client, admin.team_id, key)
        self.admin_presence.hold(team_scope(admin.team_id), key.raw, request.session_hash)
        return {"admin_state": state, "admin_tab": gr.update(visible=True), "tabs": gr.Tabs(selected="team-admin"),
                **self._view(admin, client), "admin_watch": state, "shares_seen": admin.changes(),
                "admin_timer": gr.Timer(active=True)}

    def admin_of(self, state: Any, request: gr.Request | None) -> TeamAdmin:
        """The team this tab's admin key opens, if this browser presented it: the resolver of the admin's state
        (web.events.Wiring.guard), run before every admin handler. Refused otherwise."""
        client = self.studio_handlers.client_of(request)
        if not isinstance(state, AdminState) or client is None or state.owner != client:
            raise TeamKeyRefused(ADMIN_GONE)
        return self.teams.admin(state.key)

    def admin_watch_of(self, state: Any, request: gr.Request | None) -> TeamAdmin | None:
        """The resolver of the admin timer's own state: `admin_of`, but None where that refuses, so that a page
        whose key opens nothing any more stops its timer quietly instead of showing a refusal every few seconds."""
        try:
            return self.admin_of(state, request)
        except TeamKeyRefused:
            return None

    def admin_tick(self, seen: Any, admin: TeamAdmin | None, request: gr.Request):
        """The open admin tab's timer (web.team_page): the header and the shares drawn again only when a member
        shared, withdrew or joined since the last look (a digest of ids, nothing decrypted, no new media grant
        otherwise); the timer stops once the key opens nothing."""
        if admin is None:
            return {"admin_timer": gr.Timer(active=False)}
        changes = admin.changes()
        if changes == seen:
            return {}
        return {"header": render_admin_header(admin.name, admin.members(), admin.look(), self.style_names),
                "shares": self._shares_html(admin, self.studio_handlers.client_of(request)),
                "shares_seen": changes}

    def admin_view(self, admin: TeamAdmin, request: gr.Request):
        """Everything the admin tab shows."""
        return self._view(admin, self.studio_handlers.client_of(request))

    def _view(self, admin: TeamAdmin, client: str) -> dict:
        look, now = admin.look(), time.time()
        invites = admin.invites()
        return {"header": render_admin_header(admin.name, admin.members(), look, self.style_names),
                "look_style": gr.update(value=look.style_id), "look_background": look.background,
                "look_outfits": list(look.outfits), "look_size": look.size, "look_retention": look.retention_days,
                "invites": render_invites(invites, now),
                "revoke_pick": gr.update(choices=invite_choices(invites, now), value=None),
                "shares": self._shares_html(admin, client)}

    def _shares_html(self, admin: TeamAdmin, client: str) -> str:
        scope = team_scope(admin.team_id)
        grouped = admin.shares_by_member()
        tokens = {s.share_id: self.grants.grant(client, scope, TEAM_SHARE, s.share_id)
                  for shares in grouped.values() for s in shares}
        return render_admin_shares(grouped, tokens, self.grants.grant(client, scope, TEAM_ZIP),
                                   self.grants.grant(client, scope, TEAM_CSV), self.style_names)

    def save_look(self, style_id: Any, background: Any, outfits: Any, size: Any, retention: Any, admin: TeamAdmin,
                  request: gr.Request):
        """A new version of the look, for new runs."""
        admin.set_look(style_id, str(background or ""), list(outfits or []), _whole(size), _whole(retention))
        return self._view(admin, self.studio_handlers.client_of(request))

    def make_invite(self, label: Any, days: Any, uses: Any, admin: TeamAdmin, request: gr.Request):
        """A new invite link, shown once."""
        days = days if isinstance(days, (int, float)) and not isinstance(days, bool) else -1
        invite = admin.make_invite(str(label or ""), float(days) * DAY, _whole(uses))
        return {"new_invite": render_new_invite(invite.token.code, invite.label, invite.expires_at, invite.max_uses),
                **self._view(admin, self.studio_handlers.client_of(request))}

    def revoke_invite(self, invite_id: Any, admin: TeamAdmin, request: gr.Request):
        if not isinstance(invite_id, str) or not invite_id:
            raise UserError("Choose the invite link to revoke first.", code="nothing_chosen")
        admin.revoke_invite(invite_id)
        return self._view(admin, self.studio_handlers.client_of(request))

    def ask_delete_team(self, admin: TeamAdmin, request: gr.Request):
        return {"confirm_box": gr.update(visible=True),
                "confirm_text": f"**Delete {admin.name}?** Every shared headshot, invite link and membership of the "
                                "team is erased at once, and its key destroyed. This cannot be undone; you get a "
                                "signed receipt."}

    def delete_team(self, admin: TeamAdmin, request: gr.Request):
        """Erase the team at once; the tab keeps only the receipt."""
        receipt = admin.delete_team()
        scope = team_scope(admin.team_id)
        self.grants.forget_session(scope)  # no token of the team resolves any more
        self.admin_presence.forget_session(scope)
        return {"admin_state": None, "admin_watch": None, "admin_timer": gr.Timer(active=False),
                "confirm_box": gr.update(visible=False), "receipt": render_team_receipt(receipt),
                "header": render_admin_refused("This team no longer exists."), "shares": ""}

    def unload(self, request: gr.Request) -> None:
        self.admin_presence.release(request.session_hash)

    # --- media: what a grant of the admin's page may fetch ----------------------------------------------
    def media(self, grant: Grant, favourites: str | None = None) -> tuple[bytes, str, str | None]:
        """(bytes, media type, download name or None) for a team grant, while the admin's page holds the key.

        `favourites`: the ZIP's `?ids=` query, share ids starred in the admin's browser (team.js), comma-separated;
        the ZIP then holds those of the team's live shares and nothing else.
        """
        raw = self.admin_presence.key_of(grant.session_id)
        if raw is None:
            raise TeamKeyRefused(ADMIN_GONE)
        admin = self.teams.admin(AdminKey(raw))
        if team_scope(admin.team_id) != grant.session_id:
            raise TeamKeyRefused(ADMIN_GONE)
        if grant.kind == TEAM_SHARE:
            data = admin.open_share(grant.blob_id)
            return data, media_type(data), None
        if grant.kind == TEAM_ZIP and favourites is not None:
            wanted = favourites[:MAX_FAVOURITES_QUERY].split(",")[:MAX_FAVOURITES]
            return admin.zip_of_shares(wanted), "application/zip", "team-favourites.zip"
        if grant.kind == TEAM_ZIP:
            return admin.zip_of_shares(), "application/zip", "team-headshots.zip"
        return admin.csv_of_shares().encode(), "text/csv; charset=utf-8", "team-headshots.csv"


OUTFIT_CHOICES = [(words, outfit_id) for outfit_id, words in OUTFITS.items()]
SIZE_CHOICES = [(f"{size}×{size} px", size) for size in SIZES]


def _whole(value: Any) -> int:
    """A whole number from a form field (Gradio's Number sends floats); anything else as -1, refused in words later."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 10**9:
        return -1
    return int(value) if float(value).is_integer() else -1
