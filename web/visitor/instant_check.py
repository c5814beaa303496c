"""Instant's photo check as the photos are added, before “Make”: each photo's verdict, in memory only.

Instant keeps nothing: its photos wait sealed in the upload area (web.boundary.uploads, a key in memory only)
until “Make” takes them, once. This check reads them there without taking them (`UploadStore.peek_all`),
screens them in memory as “Make” will (`InstantSteps.screen_instant`: no draft, no vault), and answers with the
verdicts in Instant's words (never a “Remove” Instant does not have). Nothing of the check is kept: not the bytes,
not the verdicts; the file names never even reach the server (the page names each verdict itself, studio.js).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from errors import ConsentRequired
from web.events import Owned, session_of
from web.render import render_screening

# Screening is CPU-bound: in the page's "screening" group (two at a time server-wide, with Studio's uploads).
INSTANT_CHECKING = dict(api_visibility="private", concurrency_limit=2, concurrency_id="screening",
                        show_progress="minimal")

if TYPE_CHECKING:
    from web.handlers import StudioHandlers


class InstantCheck:
    """The events of Instant's upload field: `check` on upload, `removed` on a file taken out, `clear` on clearing."""

    def __init__(self, handlers: "StudioHandlers") -> None:
        self.handlers = handlers

    def check(self, files: Any, mine: Owned | None, request: gr.Request):
        """The photos now in Instant's field, checked in memory: verdicts by file name, and what the set needs."""
        h = self.handlers
        session_id = session_of(mine)
        if session_id is None:
            raise ConsentRequired()
        if not files:
            return {"instant_check": ""}
        client = h.client_of(request)
        h.upload_limits.charge(client, h.address_of(request))  # screening costs CPU, as an upload's does
        contents = h.uploads.peek_all(files, client)
        report = h.studio.instant.screen_instant(session_id, contents)
        del contents  # read once more by “Make”; nothing of this check outlives its answer
        return {"instant_check": render_screening(report, instant=True, before_make=True)}

    def removed(self, files: Any, mine: Owned | None, request: gr.Request, deleted: gr.DeletedFileData):
        """A photo taken out of Instant's field before “Make”: its sealed upload is deleted at once (before, it
        waited out the upload grace unread), then the photos left are checked again."""
        path = getattr(getattr(deleted, "file", None), "path", None)
        if path:  # not this browser's, or already gone: nothing to delete here
            self.handlers.uploads.discard_own(str(path), self.handlers.client_of(request))
        return self.check(files, mine, request)

    @staticmethod
    def clear() -> dict:
        return {"instant_check": ""}
