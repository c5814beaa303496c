"""Which network address a request really comes from, and its salted hash for limits.

Behind no proxy, the address is the TCP peer. `X-Forwarded-For` is believed only when the peer
is one of the operator's trusted proxies (`HEADSHOT_TRUSTED_PROXIES`), and then only up to the
first hop that is not itself trusted: anyone can write that header, so by default it is ignored
(uvicorn's own proxy-header handling is switched off in `app.main` for the same reason).

Addresses are personal data: they are only ever kept as `address_key`, an HMAC under a
per-process salt, so a limiter's memory says nothing about who visited.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Iterable

from settings import IPNetwork, parse_networks  # noqa: F401  (the setting's own parse; re-exported)


def _in(address: str, networks: Iterable[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]) -> str:
    """The address to charge: the peer, or (from a trusted proxy) the last untrusted X-Forwarded-For hop."""
    address = peer or "unknown"
    if not trusted or not _in(address, trusted) or not forwarded_for:
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _in(hop, trusted):
            break
    return address


def is_trusted_proxy(peer: str | None, trusted: tuple[IPNetwork, ...]) -> bool:
    return bool(peer) and _in(peer, trusted)


class AddressKeys:
    """Salted, keyed hashes of addresses: stable within this process, meaningless outside it."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt or secrets.token_bytes(32)

    def key(self, address: str) -> str:
        return "addr-" + hmac.new(self._salt, address.encode(), hashlib.sha256).hexdigest()[:24]
