"""`/media/<token>`: the one route that serves a person's files, decrypted from the vault only when fetched.

A token (web.boundary.web_access.MediaGrants) is unguessable and bound to the browser's signed cookie, so a
leaked URL is useless to anyone else; an unknown token and another browser's get the same 404. A
session's headshots, ZIPs and data export open only while one of its owner's pages holds the owner key
(privacy.store.owner_presence); a team admin's shares, ZIP and CSV only while the admin's page holds the team
key (web.team_handlers). Every failure is a short plain-text answer, never a traceback or HTML.

What costs CPU and memory per request, a derived size or a ZIP, is made a few at once for everyone together, and
each browser and each network address may hold only its share of those slots (web.boundary.fair_share): one owner
looping their own downloads took both resized-download slots from everyone (issue 28). A request that finds no slot
is answered 429 with Retry-After at once; the boundary also charges every `/media` request to its own rate limits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from errors import UserError
from web.boundary.fair_share import Slots, share_of
from web.boundary.middleware import ADDRESS_HEADER
from web.boundary.web_access import CLIENT_COOKIE, media_type
from web.team_handlers import TEAM_MEDIA, TEAM_ZIP

if TYPE_CHECKING:
    from privacy.store.owner_presence import OwnerPresence
    from studio.service import Studio
    from web.boundary.web_access import ClientIds, Grant, MediaGrants
    from web.team_handlers import TeamHandlers

log = logging.getLogger(__name__)

# Downloads at a derived size made at once, for everyone together (each is ~0.1-0.3 s of CPU): see `_derived`.
# One browser makes one at a time; one address at most half of them (its people's share, never more: share_of).
DERIVED_SIZES_AT_ONCE = 2
# ZIPs (headshots, favourites, a data export, a team's shares) built at once: each holds its files in memory.
ZIPS_AT_ONCE = 4
NOT_FOUND = "Not found."
BUSY = "Many downloads are being prepared right now. Please try again in a moment."


class MediaRoute:
    """The route's handler: `app.get("/media/{token}")(MediaRoute(...))`."""

    def __init__(self, studio: "Studio", grants: "MediaGrants", clients: "ClientIds", presence: "OwnerPresence",
                 team: "TeamHandlers", *, people: int = 1) -> None:
        self.studio, self.grants, self.clients, self.presence, self.team = studio, grants, clients, presence, team
        self.derived_slots = Slots(DERIVED_SIZES_AT_ONCE, per_client=1,
                                   per_address=share_of(DERIVED_SIZES_AT_ONCE, 1 / 2, people))
        self.zip_slots = Slots(ZIPS_AT_ONCE, per_client=1, per_address=share_of(ZIPS_AT_ONCE, 1 / 4, people))

    def __call__(self, token: str, request: Request) -> Response:
        grant = self.grants.resolve(token, self.clients.check(request.cookies.get(CLIENT_COOKIE)))
        if grant is None:  # unknown token, or not this browser's: the same answer, so nothing leaks
            return _text(NOT_FOUND, 404)
        address = request.headers.get(ADDRESS_HEADER.decode()) or "addr-unknown"
        slots = self.derived_slots if grant.kind == "headshot" and "size" in request.query_params else \
            self.zip_slots if grant.kind in ("zip", "export", TEAM_ZIP) else None
        if slots is None:
            return self._serve(grant, request)
        # Derived sizes and ZIPs: CPU work any owner can ask for in a loop, in the thread pool every sync route
        # shares (/healthz included; tests/app/test_photo_set_attacks.py found 48 parallel requests held it past
        # 3 s). Made a few at once, within each browser's and network's share; the rest are told to retry, at once,
        # without holding a thread.
        with slots.slot(grant.client, address) as got:
            if not got:
                return Response(BUSY, status_code=429, media_type="text/plain", headers={"Retry-After": "2"})
            return self._serve(grant, request)

    def _serve(self, grant: "Grant", request: Request) -> Response:
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
        # Resized, face-cropped and marked again (C2PA + watermark), in memory; only within a derived-size slot.
        data, name = self.studio.headshot_download(grant.session_id, grant.blob_id, size, owner_key)
        return Response(data, media_type=media_type(data), headers=_attachment(name))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _text(message: str, status: int) -> Response:
    return Response(message, status_code=status, media_type="text/plain")
