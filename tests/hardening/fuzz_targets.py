"""The properties fuzzed by test_fuzz.py (small runs) and bench/bench_fuzz.py (long runs), and their seeds.

    ingest          any bytes -> a CleanPhoto or PhotoRejected with a known code; nothing else escapes
    verify_receipt  any bytes -> a ReceiptCheck, never an exception; valid only for an untouched receipt
    verify_image    any bytes -> a VerificationReport, never an exception

Hypothesis mutates small valid files (flipped, cut, inserted, repeated bytes), because
random bytes alone never get past the first magic-number check.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from errors import PhotoRejected
from privacy.intake import ingest as ingest_module
from privacy.intake.ingest import CleanPhoto, IngestLimits, ingest
from privacy.records.receipts import ReceiptCheck, verify_receipt

# Decoding is what is fuzzed, so tiny pictures must get past the size check.
LIMITS = IngestLimits(max_bytes=2**20, max_pixels=4_000_000, min_side=8, stored_max_side=64)
INGEST_CODES = {ingest_module.EMPTY_FILE, ingest_module.FILE_TOO_LARGE, ingest_module.UNSUPPORTED_TYPE,
                ingest_module.EXTRA_DATA, ingest_module.CORRUPT_FILE, ingest_module.TOO_MANY_PIXELS,
                ingest_module.TOO_SMALL, ingest_module.ANIMATED}


def seed_images() -> list[bytes]:
    """Small valid files of every accepted type (and a few refused ones): the starting points of mutation."""
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}
    out = []
    for fmt, params in (("JPEG", {"quality": 80, "exif": exif.tobytes()}), ("JPEG", {"progressive": True}),
                        ("PNG", {}), ("WEBP", {"quality": 70}), ("WEBP", {"lossless": True}), ("GIF", {}),
                        ("TIFF", {})):
        buffer = io.BytesIO()
        picture.save(buffer, fmt, **params)
        out.append(buffer.getvalue())
    import pillow_heif
    buffer = io.BytesIO()
    pillow_heif.from_pillow(picture.resize((64, 64))).save(buffer, quality=50)
    out.append(buffer.getvalue())
    return out


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "overwrite_int"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "repeat":
            data[at:at] = bytes(data[at:at + 16]) * draw(st.integers(1, 8))
        elif op == "overwrite_int" and len(data) >= 4:
            at = min(at, len(data) - 4)
            data[at:at + 4] = struct.pack(">I", draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                                                       draw(st.integers(0, 2**32 - 1))])))
    return bytes(data)


def check_ingest(data: bytes) -> str:
    """Ingest `data`; return "accepted" or the reason code. Any other exception is a failure."""
    try:
        photo = ingest(data, LIMITS)
    except PhotoRejected as exc:
        assert exc.code in INGEST_CODES, exc.code
        assert exc.message and "\n" not in exc.message
        return exc.code
    assert isinstance(photo, CleanPhoto)
    assert max(photo.width, photo.height) <= LIMITS.stored_max_side
    assert CleanPhoto.from_png_bytes(photo.to_png_bytes()).pixels.tobytes() == photo.pixels.tobytes()
    return "accepted"


def check_receipt(data: bytes, public_pem: bytes, genuine: bytes) -> ReceiptCheck:
    """Verify `data`; it may be valid only if it says exactly what the genuine receipt says."""
    check = verify_receipt(data, public_pem)
    assert isinstance(check, ReceiptCheck)
    if check.valid:
        assert _same_receipt(data, genuine), "an altered receipt verified"
    return check


def _same_receipt(data: bytes, genuine: bytes) -> bool:
    try:
        return json.loads(data) == json.loads(genuine)
    except ValueError:
        return False


@st.composite
def receipt_mutations(draw, genuine: bytes) -> bytes:
    """Edits of a genuine receipt: its JSON values changed, fields dropped or added, or its bytes damaged."""
    kind = draw(st.sampled_from(["value", "drop", "add", "bytes", "json"]))
    obj = json.loads(genuine)
    if kind == "value":
        key = draw(st.sampled_from(sorted(obj)))
        obj[key] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans(),
                                  st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                       st.integers(), max_size=2)))
        return json.dumps(obj).encode()
    if kind == "drop":
        obj.pop(draw(st.sampled_from(sorted(obj))))
        return json.dumps(obj).encode()
    if kind == "add":
        obj[draw(st.text(min_size=1, max_size=10))] = draw(st.text(max_size=10))
        return json.dumps(obj).encode()
    if kind == "json":
        return json.dumps(draw(st.recursive(st.none() | st.integers() | st.text(max_size=10),
                                            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c,
                                                                                                max_size=3),
                                            max_leaves=10))).encode()
    data = bytearray(genuine)
    at = draw(st.integers(0, len(data) - 1))
    data[at] = draw(st.integers(0, 255))
    return bytes(data)
