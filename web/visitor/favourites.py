"""Favourites kept with the session: the gallery drawn with the session's stars, and the event a star saves through.

The stars are stored by the studio (studio.favourites), sealed under the headshots' key, so opening the private
link in another browser brings them back; this browser keeps no copy. A star toggled in the gallery or in the
enlarged view sends the whole starred set (web/visitor/favourites.js) through a hidden field and button of the
page, wired like every other event (web.events: the caller's session resolved first, the owner's key as the
gallery reads it), and the studio keeps only ids of this session's own headshots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from errors import OwnerKeyRequired, SessionGone, UserError
from studio.favourites import parse_ids
from web.events import PAGE_ONLY_NO_SPINNER, Owned, Wiring
from web.render import counted, render_gallery

if TYPE_CHECKING:
    from web.components import Page
    from web.handlers import StudioHandlers

NOTE_BOX = "<p id='hs-fav-note' role='status' aria-live='polite'>{}</p>"
NO_SESSION = ("Your favourites can be saved once your session is open: tick the three statements, or open your "
              "private link. Nothing was saved.")


def gallery(handlers: "StudioHandlers", session_id: str, client: str) -> str:
    """Every headshot this session holds for its present owner, the favourites starred (empty when there are none,
    or no key)."""
    owner_key = handlers.presence.key_of(session_id)
    studio = handlers.studio
    try:
        shots = studio.headshots(session_id, owner_key)
        starred = studio.favourites.of(session_id, owner_key) if shots else []
    except (OwnerKeyRequired, SessionGone):
        return ""
    if not shots:
        return ""
    tokens = [handlers.grants.grant(client, session_id, "headshot", shot.blob_id) for shot in shots]
    can_make_more = studio.can_make_more(session_id)
    latest = handlers.line.job_of(session_id)
    return render_gallery(shots, tokens, handlers.grants.grant(client, session_id, "zip"), handlers.style_labels,
                          can_make_more=can_make_more, favourites=starred,
                          instant_last=not can_make_more and latest is not None and latest.instant)


def saved_note(kept: int, left_out: int) -> str:
    """What the page says once the studio has the set: how many are kept with the session, and any left out."""
    text = (f"★ {counted(kept, 'favourite')} saved with your session." if kept
            else "No favourites: none is kept with your session.")
    if left_out:
        text += (f" {counted(left_out, 'starred headshot')} not in your gallery "
                 f"{'was' if left_out == 1 else 'were'} left out.")
    return NOTE_BOX.format(text)


class FavouritesPart:
    """The page's hidden favourites field and button, the line that says what was saved, and their event."""

    favourite_ids: gr.Textbox
    favourite_save: gr.Button
    favourite_note: gr.HTML

    def __init__(self, handlers: "StudioHandlers") -> None:
        self.handlers = handlers

    def lay_out(self) -> None:
        """Below the gallery: the line that answers a star; the field and button are hidden (studio.css)."""
        self.favourite_note = gr.HTML(NOTE_BOX.format(""), elem_id="hs-fav-note-box")
        self.favourite_ids = gr.Textbox(label="Favourite headshots", max_lines=1, elem_id="hs-fav-ids")
        self.favourite_save = gr.Button("Save favourites", elem_id="hs-fav-save")

    def connect(self, wire: Wiring, page: "Page") -> None:
        wire.add_view(self)
        # "always_last": stars pressed quickly one after another end in the last set, none dropped (Gradio's
        # default drops a click made while the previous one is answered).
        self.favourite_save.click(**wire.event(self.save, inputs=[self.favourite_ids, page.session],
                                               outputs=[self.favourite_note], api_name="save_favourites",
                                               trigger_mode="always_last",
                                               **PAGE_ONLY_NO_SPINNER))

    def save(self, text: Any, mine: Owned | None, request: gr.Request) -> dict:
        """Make the starred headshots sent (ids, comma-separated) the session's favourites."""
        if mine is None:
            raise UserError(NO_SESSION, code="no_session")
        wanted = set(parse_ids(text))
        owner_key = self.handlers.presence.key_of(mine.session_id)
        kept = self.handlers.studio.favourites.choose(mine.session_id, sorted(wanted), owner_key)
        return {"favourite_note": saved_note(len(kept), len(wanted) - len(kept))}
