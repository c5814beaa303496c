"""Data export: everything a session owns, as one ZIP built in memory (promise 17).

Contents:
    headshots/headshot_01.<ext> …     the delivered (marked) headshots, as generated
    report.json                       scores and styles of every output, kept or held back
    favourites.json                   which of those headshots were starred (their file names), if any
    consent.json                      what was attested, when, under which policy version
    audit_events.json                 this session's audit trail (counts and times only)
    model/…                           opt-in: the person's adapter, as the files the caller's converter
                                      makes (pipeline/adapter.py `export_files`: diffusers and kohya
                                      LoRA, the trigger's token embeddings, how to use them)

The adapter is converted by a callable the caller passes in (pipeline/adapter.py knows the
format; privacy/ must not import pipeline/). Nothing is written to disk here.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Callable

from errors import SessionGone, UserError
from privacy.lifecycle.consent import get_consent
from privacy.lifecycle.erasure import ErasureContext
from privacy.records import audit
from privacy.records.receipts import iso_utc

ADAPTER_DIR = "model/"  # the adapter's files, kept together so `load_lora_weights("model/")` finds them

_EXTENSIONS = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"))


class NoAdapter(UserError):
    code = "no_adapter"

    def __init__(self) -> None:
        super().__init__("There is no trained model to export: it was erased on schedule or never trained. "
                         "Export again without the model to get your headshots and records.")


def export_session(ctx: ErasureContext, session_id: str, *, include_adapter: bool = False,
                   adapter_files: Callable[[bytes], dict[str, bytes]] | None = None,
                   owner_key: bytes | None = None) -> bytes:
    """The session's data as ZIP bytes; records a `data_exported` audit event.

    `adapter_files(sealed adapter bytes)` returns the exported model's files by name. `owner_key`
    opens headshots whose key was handed to their owner.
    """
    if include_adapter and adapter_files is None:
        raise ValueError("include_adapter needs adapter_files to convert the adapter")
    vault = ctx.vault
    audit_id = vault.audit_id(session_id)  # SessionGone when erased
    consent = get_consent(ctx.db, session_id)
    if consent is None:
        raise SessionGone()
    adapters = vault.blobs(session_id, "adapter") if include_adapter else []
    if include_adapter and not adapters:
        raise NoAdapter()
    buffer = io.BytesIO()
    headshots = vault.blobs(session_id, "headshot")
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        names = {}
        for i, ref in enumerate(headshots, start=1):
            data = vault.open(session_id, ref.id, owner_key=owner_key)
            names[ref.id] = f"headshots/headshot_{i:02d}.{image_extension(data)}"
            # Images are compressed already: store them as they are.
            zf.writestr(names[ref.id], data, compress_type=zipfile.ZIP_STORED)
        for ref in vault.blobs(session_id, "favourites")[-1:]:  # studio.favourites: one sealed list of ids
            starred = json.loads(vault.open(session_id, ref.id, owner_key=owner_key))
            zf.writestr("favourites.json", json.dumps({"favourites": [names[i] for i in starred if i in names]},
                                                      indent=2))
        for ref in vault.blobs(session_id, "report")[-1:]:
            zf.writestr("report.json", vault.open(session_id, ref.id, owner_key=owner_key))
        zf.writestr("consent.json", json.dumps({
            "policy_version": consent.policy_version,
            "given_at": iso_utc(consent.given_at),
            "attestations": {"own_photos": consent.attestations.own_photos, "adult": consent.attestations.adult,
                             "purpose": consent.attestations.purpose},
        }, indent=2, sort_keys=True))
        if adapters:
            files = adapter_files(vault.open(session_id, adapters[-1].id))  # type: ignore[misc]
            for name, data in files.items():
                if "/" in name or name.startswith("."):
                    raise ValueError("adapter file names must be plain names")
                zf.writestr(ADAPTER_DIR + name, data)
        now = ctx.clock()
        audit.record_event(ctx.db, audit_id, audit.DATA_EXPORTED, now, headshots=len(headshots),
                           adapter=bool(adapters))
        events = [{"event": e["event"], "at": iso_utc(e["at"]), "detail": e["detail"]}
                  for e in audit.events_for(ctx.db, audit_id)]
        zf.writestr("audit_events.json", json.dumps({"audit_id": audit_id, "events": events}, indent=2,
                                                    sort_keys=True))
    return buffer.getvalue()


def image_extension(data: bytes) -> str:
    """The file extension for delivered image bytes, from their magic number."""
    for magic, ext in _EXTENSIONS:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bin"
