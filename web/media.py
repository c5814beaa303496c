"""`/media/<token>`: the one route that serves a person's files, decrypted from the vault only when fetched.

A token (web.boundary.web_access.MediaGrants) is unguessable and bound to the browser's signed cookie, so a
leaked URL is useless to anyone else; an unknown token and another browser's get the same 404. A
session's headshots, ZIPs and data export open only while one of its owner's pages holds the owner key
(privacy.store.owner_presence); a team admin's shares, ZIP and CSV only while the admin's page holds the team
key (web.team_handlers). Every failure is a short plain-text answer, never a traceback or HTML.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from errors import UserError
from web.boundary.web_access import CLIENT_COOKIE, media_type
from web.team_handlers import TEAM_MEDIA

if TYPE_CHECKING:
    from privacy.store.owner_presence import OwnerPresence
    from studio.service import Studio
    from web.boundary.web_access import ClientIds, Grant, MediaGrants
    from web.team_handlers import TeamHandlers

log = logging.getLogger(__name__)

# Downloads at a derived size made at once, for everyone together (each is ~0.1-0.3 s of CPU): see `_derived`.
DERIVED_SIZES_AT_ONCE = 2
NOT_FOUND = "Not found."


class MediaRoute:
    """The route's handler: `app.get("/media/{token}")(MediaRoute(...))`."""

    def __init__(self, studio: "Studio", grants: "MediaGrants", clients: "ClientIds", presence: "OwnerPresence",
                 team: "TeamHandlers") -> None:
        self.studio, self.grants, self.clients, self.presence, self.team = studio, grants, clients, presence, team
        self._derived_sizes = threading.BoundedSemaphore(DERIVED_SIZES_AT_ONCE)

    def __call__(self, token: str, request: Request) -> Response:
        grant = self.grants.resolve(token, self.clients.check(request.cookies.get(CLIENT_COOKIE)))
        if grant is None:  # unknown token, or not this browser's: the same answer, so nothing leaks
            return _text(NOT_FOUND, 404)
        try:
            if grant.kind in TEAM_MEDIA:  # a team admin's share, ZIP or CSV: only while the admin's page holds the key
                data, kind, name = self.team.media(grant, request.query_params.get("ids"))
                return Response(data, media_type=kind, headers=_attachment(name) if name else {})
            return self._session_media(grant, request)
        except UserError as exc:
            # text/plain: the message may quote a few characters of the query (an unknown size); never HTML.
            return _text(exc.message, 410)
        except Exception as exc:  # e.g. the blob was erased a moment ago
            log.error("media %s failed: %s", grant.kind, type(exc).__name__)
            return _text(NOT_FOUND, 404)

    def _session_media(self, grant: "Grant", request: Request) -> Response:
        owner_key = self.presence.key_of(grant.session_id)  # only while one of the owner's pages is open
        studio, query = self.studio, request.query_params
        if grant.kind == "headshot" and "size" in query:  # one size, made in memory, marked
            return self._derived(grant, query["size"][:8], owner_key)
        if grant.kind == "headshot":
            data = studio.headshot_bytes(grant.session_id, grant.blob_id, owner_key)
            return Response(data, media_type=media_type(data))
        if grant.kind == "zip" and "ids" in query:  # "Download favourites": ids of this session
            wanted = query["ids"][:4000].split(",")[:500]
            data, name = studio.headshots_zip(grant.session_id, owner_key, blob_ids=wanted), "favourites.zip"
        elif grant.kind == "zip":
            data, name = studio.headshots_zip(grant.session_id, owner_key), "headshots.zip"
        else:
            data, name = studio.export(grant.session_id, owner_key=owner_key), "my-data.zip"
        return Response(data, media_type="application/zip", headers=_attachment(name))

    def _derived(self, grant: "Grant", size: str, owner_key: bytes | None) -> Response:
        # Each derived size is resized, face-cropped and marked again (C2PA + watermark): CPU work that any owner
        # can ask for in a loop, in the thread pool every sync route shares (/healthz included). Found by
        # tests/app/test_photo_set_attacks.py: 48 parallel requests held /healthz past 3 s. At most a few are made
        # at once; the rest are told to retry, at once, without holding a thread.
        if not self._derived_sizes.acquire(blocking=False):
            return Response("Many downloads are being prepared right now. Please try again in a moment.",
                            status_code=429, media_type="text/plain", headers={"Retry-After": "2"})
        try:
            data, name = self.studio.headshot_download(grant.session_id, grant.blob_id, size, owner_key)
        finally:
            self._derived_sizes.release()
        return Response(data, media_type=media_type(data), headers=_attachment(name))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _text(message: str, status: int) -> Response:
    return Response(message, status_code=status, media_type="text/plain")
