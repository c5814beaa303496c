"""The operator tab's HTML fragments: plain functions from results to markup, everything escaped.

The operator sees the team they just made and its admin link, once, and nothing else of anyone.
"""

from __future__ import annotations

from web.render import _esc


def render_operator_ready() -> str:
    return ("<div id='hs-operator' data-ready='true'><p role='status'><strong>Operator.</strong> You can create a "
            "team here: its admin link is shown to you once, and the studio keeps no copy of it. This tab shows no "
            "person's data, no session and no shared headshot.</p></div>")


def render_operator_refused(message: str) -> str:
    return f"<div id='hs-operator'><p class='hs-no' role='status'>{_esc(message)}</p></div>"


def render_new_team(name: str, admin_code: str) -> str:
    """A new team's admin link, shown this once: the page builds it from its own address (operator.js)."""
    return (f"<div id='hs-operator-team-new' data-team='{_esc(name)}' data-admin='{_esc(admin_code)}'>"
            f"<p role='status'><strong>Team “{_esc(name)}” created.</strong> Copy its admin link now and give it "
            "only to the team's admin: the studio keeps no copy of its key, so it is shown only this once, and "
            "without it nobody (the studio included) can open what members share with the team.</p>"
            "<p><input id='hs-operator-admin-link' readonly aria-label='The new team admin link' value=''> "
            "<button type='button' class='hs-button' data-hs-copy-admin>Copy link</button> "
            "<span id='hs-operator-copied' role='status'></span></p></div>")
