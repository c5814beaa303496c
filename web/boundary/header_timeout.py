"""Half-sent request headers are closed in bounded time: uvicorn's HTTP/1.1 protocol with a header-read deadline.

uvicorn times out a connection only while it is idle between requests (`timeout_keep_alive`); a client that opens
a connection and sends the start of a request, a byte now and then, held it open for as long as it liked
(issue 28: 400 such connections stayed open 20 s, each a socket and a parser). Gradio's launch options have no
setting for it, and uvicorn's `Config` none either (0.54), so the app serves with this protocol class
(`uvicorn.run(..., http=HeaderTimeoutProtocol)`, app.main): from a connection's opening, and from the first byte of
each next request, the headers must be complete within `header_timeout_seconds`, or the connection is closed
without an answer. The body is not under this deadline: uploads have their own stall and total limits
(web.boundary.uploads).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def protocol_with_header_timeout(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete within `seconds`."""

    class HeaderTimeoutProtocol(H11Protocol):
        header_timeout_seconds = seconds

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()  # a connection that never sends a byte is under the deadline too

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._awaiting_headers():
                self._arm()  # from the first byte of a request: more bytes do not push the deadline back
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _awaiting_headers(self) -> bool:
            # IDLE: no request line and headers parsed yet; a complete request moves h11 to SEND_BODY or DONE.
            return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

        def _arm(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(self.header_timeout_seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self._awaiting_headers() and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol
