"""What each event of the operator tab does: present the operator key, create a team (its admin link shown once).

The operator is whoever presented the operator key in this tab (`OperatorState`, server-side, bound
to the browser's cookie). Every act checks the key again against the stored verifier
(privacy.teams.operator_keys), so a key replaced or revoked on the command line stops working at once,
even in a tab that opened it earlier (`operator_of`, the resolver of the tab's state, run before
every handler that reads it: web.events). Presenting a key is limited per browser and per address like
a return key or a team admin key. Nothing here reads a session, a photo, a headshot or a share: the
operator creates a team, and what the team holds is opened only with its admin key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from errors import ConsentRequired, OperatorKeyRefused
from privacy.teams.operator_keys import OperatorKey, OperatorKeys
from web.admission import LimitPair
from web.boundary.rate_limit import ADDRESS_KEY_LIMIT, CLIENT_KEY_LIMIT
from web.handlers import StudioHandlers
from web.operator_render import render_new_team, render_operator_ready, render_operator_refused

OPERATOR_TAB = "operator"


@dataclass(frozen=True)
class OperatorState:
    """The operator key presented in this tab, with the browser that presented it (never shown, never logged)."""

    owner: str
    key: OperatorKey = field(repr=False)


class OperatorHandlers:
    """The operator tab's events; `web.operator_page` lays the components out and connects them."""

    def __init__(self, studio_handlers: StudioHandlers) -> None:
        self.studio_handlers = studio_handlers
        self.teams = studio_handlers.studio.teams
        self.keys = OperatorKeys(studio_handlers.studio.db)
        self.key_limits = LimitPair(CLIENT_KEY_LIMIT, ADDRESS_KEY_LIMIT, "attempts to open an operator link",
                                    studio_handlers.limiters)

    def open_operator(self, code: Any, request: gr.Request):
        """Present the key from the link's fragment: the tab, shown and chosen, says whether it opened.

        A page opened without one changes nothing and asks nothing: the tab stays hidden.
        """
        if not code:
            return {"state": None}
        handlers = self.studio_handlers
        client = handlers.client_of(request)
        if client is None:
            raise ConsentRequired("Please reload the studio page.")
        self.key_limits.charge(client, handlers.address_of(request))
        try:
            key = self.keys.check(str(code))
        except OperatorKeyRefused as refused:
            return {"state": None, "tab": gr.update(visible=True), "tabs": gr.Tabs(selected=OPERATOR_TAB),
                    "header": render_operator_refused(refused.message)}
        return {"state": OperatorState(client, key), "tab": gr.update(visible=True),
                "tabs": gr.Tabs(selected=OPERATOR_TAB), "header": render_operator_ready()}

    def create_team(self, name: Any, operator: OperatorKey, request: gr.Request):
        """A new team, its admin link shown once (the name field emptied)."""
        team = self.teams.create(name if isinstance(name, str) else "")
        return {"new_team": render_new_team(team.name, team.admin_key.code), "name": ""}

    def operator_of(self, state: Any, request: gr.Request | None) -> OperatorKey:
        """The operator key this tab presented, if this browser presented it and it is still the one minted: the
        resolver of the tab's state (web.events.Wiring.guard), run before every handler that reads it."""
        client = self.studio_handlers.client_of(request)
        if not isinstance(state, OperatorState) or client is None or state.owner != client:
            raise OperatorKeyRefused("Open your operator link on this page first.")
        return self.keys.check(state.key)  # replaced or revoked since: refused from this act on
