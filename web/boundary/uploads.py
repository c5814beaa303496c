"""Uploads between the upload route and the handler that reads them: sealed, owned, short-lived.

Gradio's own upload route streams each file into a named plaintext temp file and leaves it there
when the client drops the connection; it answers with absolute server paths, and any later
request may name any path. This module replaces that path of a photo:

* `receive_files` parses the multipart body as it streams in, with every limit applied while
  reading (bytes per file, files per request, bytes per request, a stall and a total deadline).
  A file is held in memory only until its part ends, then sealed; nothing is written in plaintext,
  so a dropped or refused upload leaves no readable byte anywhere, at any moment.
* `UploadStore` seals each file with AES-256-GCM under a key that exists only in this process's
  memory (a crash or restart crypto-shreds every upload still waiting; `purge` then removes the
  ciphertext), binds it to the client that sent it, and hands that client an opaque reference,
  never a path. Only `path_for(ref, owner)` turns a reference back into the sealed file's path,
  for its owner, within the grace period; only `take(path, owner)` opens it, once. The store is
  shared by everyone, so each browser and each network address may hold only its share of it
  (`web.boundary.fair_share`), and a browser whose page has not given consent only a couple.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from errors import UserError
from web.boundary.fair_share import share_of

REF_PREFIX = "upload-"
SEALED_SUFFIX = ".sealed"


class UploadRefused(Exception):
    """An upload request that is not accepted: `status` for HTTP, `message` for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_files: int
    max_request_bytes: int
    stall_seconds: float
    timeout_seconds: float


# Once a queued event names an upload, the upload may wait for that event's turn at the screening
# CPU, behind everyone else's: it is kept this many graces from the moment it was named.
CLAIMED_GRACES = 3
# Shares of the store (issue 28: one address with no consent filled all 10,000 places with 1-byte files, and every
# upload on the server was refused). A browser's page sends at most one set (2 x the most photos) and a replacement
# at a time; before consent a page uploads only the Verify tab's one image. An address holds at most a twentieth
# of the store per person behind it, never more than half; before consent, a few per person.
UPLOADS_PER_BROWSER = 100
UPLOADS_BEFORE_CONSENT = 2
ADDRESS_SHARE = 1 / 20
BEFORE_CONSENT_PER_PERSON = 4
BROWSER_FULL = ("Many of your uploaded files are still waiting to be read. Please wait a minute, or reload the page, "
                "then try again.")
NETWORK_FULL = ("Many uploaded files from your network are still waiting to be read. Please try again in a few "
                "minutes.")
CONSENT_FIRST = "Please tick the three statements first; then you can upload your photos."


@dataclass
class _Entry:
    ref: str
    owner: str
    path: str
    size: int
    created: float
    claimed: float | None = None  # when a queue join named it (see CLAIMED_GRACES)
    address: str = ""
    consented: bool = True


class UploadStore:
    """Sealed uploads waiting for their handler; see the module docstring."""

    def __init__(self, directory: Path, *, grace_seconds: float, max_entries: int = 10_000, people: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = Path(directory)
        self.grace_seconds = grace_seconds
        self.max_entries = max_entries
        self.per_address = share_of(max_entries, ADDRESS_SHARE, people)
        self.before_consent_per_address = min(self.per_address, BEFORE_CONSENT_PER_PERSON * people)
        self._held: dict[str, int] = {}  # "c:<browser>", "a:<address>", "u:<address>" (before consent) -> entries
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))  # never written anywhere
        self._entries: dict[str, _Entry] = {}
        self._by_path: dict[str, str] = {}
        self._lock = threading.Lock()
        self._clock = clock

    # --- lifecycle ---------------------------------------------------------------------------------
    def purge(self) -> int:
        """Start-up: remove every sealed file left by an earlier process (its key died with it)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        removed = 0
        for entry in os.scandir(self.directory):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
        return removed

    def expire(self) -> int:
        """Remove the uploads no handler came for within the grace period (a bare call, a closed tab)."""
        with self._lock:
            stale = [e for e in self._entries.values() if self._expired(e)]
            for entry in stale:
                self._forget(entry)
        for entry in stale:
            _unlink(entry.path)
        return len(stale)

    # --- the upload route's side ---------------------------------------------------------------------
    def put(self, owner: str, data: bytes, *, address: str = "", consented: bool = True) -> str:
        """Seal `data` for `owner` (from `address`) and return its opaque reference, within their shares."""
        with self._lock:
            self._check_share(owner, address, consented)
        token = secrets.token_urlsafe(18)
        ref = REF_PREFIX + token
        path = str(self.directory / (token + SEALED_SUFFIX))
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, data, _aad(ref, owner))
        temp = path + ".part"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(sealed)
            os.replace(temp, path)
        except BaseException:
            _unlink(temp)
            raise
        with self._lock:
            try:
                self._check_share(owner, address, consented)  # again: others may have sealed while this one did
            except UploadRefused:
                _unlink(path)
                raise
            entry = _Entry(ref, owner, path, len(data), self._clock(), address=address, consented=consented)
            self._entries[ref] = entry
            self._by_path[path] = ref
            for key in _keys(entry):
                self._held[key] = self._held.get(key, 0) + 1
        return ref

    def _check_share(self, owner: str, address: str, consented: bool) -> None:  # with the lock held
        if not consented and self._held.get("c:" + owner, 0) >= UPLOADS_BEFORE_CONSENT:
            raise UploadRefused(403, CONSENT_FIRST)
        if not consented and self._held.get("u:" + address, 0) >= self.before_consent_per_address:
            raise UploadRefused(429, CONSENT_FIRST)
        if self._held.get("c:" + owner, 0) >= UPLOADS_PER_BROWSER:
            raise UploadRefused(429, BROWSER_FULL)
        if self._held.get("a:" + address, 0) >= self.per_address:
            raise UploadRefused(429, NETWORK_FULL)
        if len(self._entries) >= self.max_entries:
            raise UploadRefused(503, "The studio is very busy right now. Please try again in a minute.")

    def held_by(self, owner: str) -> int:
        with self._lock:
            return self._held.get("c:" + owner, 0)

    def discard(self, refs: list[str]) -> None:
        """Drop uploads whose request failed after they were sealed."""
        with self._lock:
            entries = [self._entries[r] for r in refs if r in self._entries]
            for entry in entries:
                self._forget(entry)
        for entry in entries:
            _unlink(entry.path)

    def discard_paths(self, paths: list[str]) -> int:
        """Drop the sealed uploads at `paths` (a request refused before its handler ran); others are ignored.

        Only paths of sealed uploads count, and only the boundary puts those into a request, for the browser that
        uploaded them (web.boundary.middleware), so a caller can discard nothing but its own uploads.
        """
        with self._lock:
            refs = [self._by_path[p] for p in paths if isinstance(p, str) and p in self._by_path]
        self.discard(refs)
        return len(refs)

    # --- the handler's side ----------------------------------------------------------------------------
    def path_for(self, ref: str, owner: str | None) -> str | None:
        """The sealed file behind `ref`, only for its owner and within the grace period; else None."""
        if owner is None or not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
            return None
        with self._lock:
            entry = self._entries.get(ref)
        if entry is None or not secrets.compare_digest(entry.owner, owner) or self._expired(entry):
            return None
        with self._lock:
            entry.claimed = self._clock()
        return entry.path

    def is_sealed_path(self, path: str) -> bool:
        with self._lock:
            return path in self._by_path

    def take(self, path: str, owner: str | None) -> bytes:
        """Open a sealed upload once, for its owner: its bytes, and it is gone. KeyError if not theirs."""
        with self._lock:
            entry = self._entry_of(path, owner)
            self._forget(entry)  # once: a second read of the same reference finds nothing
        try:
            if self._expired(entry):
                raise KeyError("expired")
            return self._open(entry)
        finally:
            _unlink(entry.path)

    def peek_all(self, paths: list[str] | str | None, owner: str | None) -> list[bytes]:
        """Read every sealed upload a request names, for its owner, and leave each sealed where it is, for the request
        that takes it (Instant checks its photos as they are added; its “Make” then takes them, once). Nothing is
        written: the bytes live in this call's memory only. A `UserError` if any could not be read."""
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        contents = []
        for path in paths:
            try:
                with self._lock:
                    entry = self._entry_of(path, owner)
                if self._expired(entry):
                    raise KeyError("expired")
                contents.append(self._open(entry))
            except Exception:  # not theirs, expired, taken meanwhile, unreadable, InvalidTag
                raise UserError("A file could not be read from the upload. Please choose it again.",
                                code="upload_unreadable") from None
        return contents

    def discard_own(self, path: str, owner: str | None) -> bool:
        """Delete the sealed upload at `path` unread, only for its owner (a file taken out of a field before its
        request): False when it is not theirs or already gone."""
        with self._lock:
            try:
                entry = self._entry_of(path, owner)
            except KeyError:
                return False
            self._forget(entry)
        _unlink(entry.path)
        return True

    def _entry_of(self, path: str, owner: str | None) -> _Entry:  # with the lock held
        """The sealed upload at `path` if `owner` uploaded it; KeyError otherwise."""
        ref = self._by_path.get(str(path))
        entry = self._entries.get(ref) if ref else None
        if entry is None or owner is None or not secrets.compare_digest(entry.owner, owner):
            raise KeyError("not an upload of this client")
        return entry

    def _open(self, entry: _Entry) -> bytes:
        sealed = _read_regular_file(entry.path, entry.size + 12 + 16)
        return self._aead.decrypt(sealed[:12], sealed[12:], _aad(entry.ref, entry.owner))

    def take_all(self, paths: list[str] | str | None, owner: str | None) -> list[bytes]:
        """Open every sealed upload a request names, once, for its owner; every one named is deleted, whatever
        happens (a refused one never keeps the others on disk). A `UserError` if any could not be opened."""
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        contents, refused = [], False
        for path in paths:
            try:
                contents.append(self.take(str(path), owner))
            except Exception:  # not theirs, expired, unreadable, InvalidTag
                refused = True
        if refused:
            raise UserError("A file could not be read from the upload. Please upload it again.",
                            code="upload_unreadable")
        return contents

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expired(self, entry: _Entry) -> bool:
        now = self._clock()
        if entry.claimed is not None:
            return now - entry.claimed > CLAIMED_GRACES * self.grace_seconds
        return now - entry.created > self.grace_seconds

    def _forget(self, entry: _Entry) -> None:  # with the lock held
        if self._entries.pop(entry.ref, None) is None:
            return
        self._by_path.pop(entry.path, None)
        for key in _keys(entry):
            left = self._held.get(key, 1) - 1
            if left:
                self._held[key] = left
            else:
                self._held.pop(key, None)


def _keys(entry: _Entry) -> tuple[str, ...]:
    """The shares an entry counts against: its browser's, its address's, and before consent its address's small one."""
    return ("c:" + entry.owner, "a:" + entry.address) + (() if entry.consented else ("u:" + entry.address,))


def _aad(ref: str, owner: str) -> bytes:
    return f"upload|{ref}|{owner}".encode()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_regular_file(path: str, limit: int) -> bytes:
    """Read at most `limit` bytes of a regular file, refusing links, devices and FIFOs before reading."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise KeyError("not a sealed upload")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit)
    finally:
        os.close(fd)


# --- streaming multipart parsing --------------------------------------------------------------------

async def receive_files(chunks: AsyncIterator[bytes], content_type: str, limits: UploadLimits,
                        on_file: Callable[[bytes], Awaitable[None]]) -> int:
    """Parse a multipart/form-data body as it streams, calling `on_file` with each complete `files` part.

    Every limit is applied while reading, so an oversized, endless or stalled request is cut off
    early. Returns the number of bytes read. Raises UploadRefused.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, "This is not a file upload.")

    parts: list[bytearray | None] = []  # the current part's bytes (None: a field we ignore)
    finished: list[bytes] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}
    disposition: list[bytes] = []
    too_big: list[bool] = []

    def on_part_begin() -> None:
        disposition.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            disposition.append(header["value"])
        header["field"] = header["value"] = b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(disposition[0] if disposition else b"")
        is_file = options.get(b"name") == b"files" and b"filename" in options
        if is_file and len(finished) + 1 > limits.max_files:
            raise UploadRefused(413, f"Please send at most {limits.max_files} files at once.")
        parts.append(bytearray() if is_file else None)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current = parts[-1] if parts else None
        if current is None:
            return
        current.extend(data[start:end])
        if len(current) > limits.max_file_bytes:
            too_big.append(True)

    def on_part_end() -> None:
        current = parts.pop() if parts else None
        if current is not None:
            finished.append(bytes(current))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
    })
    received = 0
    deadline = time.monotonic() + limits.timeout_seconds
    iterator = chunks.__aiter__()
    while True:
        wait = min(limits.stall_seconds, deadline - time.monotonic())
        if wait <= 0:
            raise UploadRefused(408, "The upload took too long. Please try again on a steadier connection.")
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), timeout=wait)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise UploadRefused(408, "The upload stalled. Please try again on a steadier connection.") from None
        received += len(chunk)
        if received > limits.max_request_bytes:
            raise UploadRefused(413, "These files are too large to send at once. Please send fewer or smaller photos.")
        try:
            parser.write(chunk)
        except UploadRefused:
            raise
        except Exception:  # python-multipart's parse errors: a malformed body
            raise UploadRefused(400, "The upload could not be read. Please try again.") from None
        if too_big:
            raise UploadRefused(413, f"A file is larger than the {limits.max_file_bytes // (1024 * 1024)} MB limit.")
        while finished:
            await on_file(finished.pop(0))
    try:
        parser.finalize()
    except Exception:
        raise UploadRefused(400, "The upload was incomplete. Please try again.") from None
    if parts:  # a part that never ended: the body was cut short
        raise UploadRefused(400, "The upload was incomplete. Please try again.")
    while finished:
        await on_file(finished.pop(0))
    return received
