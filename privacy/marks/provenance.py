"""Provenance of every headshot: mark it as AI-generated (watermark, XMP, C2PA) and verify such marks.

    mark_headshot:  pixels ─▶ [visible corner mark] ─▶ invisible watermark ─▶ JPEG + XMP source type ─▶ C2PA sign
    verify_image:   bytes  ─▶ decode ─▶ C2PA state · watermark payload · XMP source type ─▶ VerificationReport

The order matters: the watermark lives in the pixels before encoding, and the C2PA
manifest is signed last so its hash covers the final bytes. Nothing added says who
is pictured: no names, session ids, file names, timestamps or location; the C2PA
manifest carries no thumbnail. Everything happens in memory.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from privacy.marks import watermark
from privacy.marks.content_credentials import (
    TRAINED_ALGORITHMIC_MEDIA,
    ContentCredentials,
    load_anchor,
    load_identity,
    manifest_definition,
)

STUDIO_NAME = "Headshot Studio"
STUDIO_VERSION = "0.1.0"  # claim generator version in every manifest; bump with releases
JPEG_QUALITY = 92  # delivery format: JPEG q92, 4:4:4 chroma (the watermark lives in chroma)
VISIBLE_LABEL = "AI-generated"

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
         "GIF": "image/gif", "HEIF": "image/heif", "AVIF": "image/avif", "BMP": "image/bmp"}
_SOURCE_TYPE = re.compile(rb"DigitalSourceType(?:=\"|>)\s*([^\"<\s]+)")


@dataclass(frozen=True)
class VerificationReport:
    """What an image says about where it came from. `is_ours`: our C2PA is trusted, or our watermark checks."""

    readable: bool  # the bytes decode as an image
    c2pa_present: bool
    c2pa_state: str  # trusted | valid | tampered | invalid | absent
    watermark_found: bool
    watermark_payload: dict[str, Any] | None
    source_type: str | None  # IPTC DigitalSourceType in the image's XMP metadata
    is_ours: bool
    c2pa_source_type: str | None = None
    claim_generator: str | None = None
    training_mining: dict[str, str] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def summary(self) -> list[str]:
        """Plain-language lines for the CLI and the app's Verify tab."""
        if not self.readable:
            return ["Not a readable image: nothing to verify."]
        states = {"trusted": "valid, signed by this studio (trusted by our anchor)",
                  "valid": "valid, but signed by someone else",
                  "tampered": "TAMPERED: the image changed after it was signed",
                  "invalid": "invalid (broken or unverifiable signature)", "absent": "none"}
        wm = (f"found: {self.watermark_payload['studio_mark']}, format v{self.watermark_payload['format_version']}, "
              f"{self.watermark_payload['generator']}{' (demo model)' if self.watermark_payload['demo_model'] else ''}"
              if self.watermark_found and self.watermark_payload else "not found")
        return [f"C2PA content credentials: {states.get(self.c2pa_state, self.c2pa_state)}",
                f"Invisible watermark: {wm}",
                f"Metadata source type: {self.source_type or 'none'}",
                "Verdict: made by this studio (AI-generated)" if self.is_ours
                else "Verdict: no provenance from this studio found"]


_NOT_AN_IMAGE = VerificationReport(readable=False, c2pa_present=False, c2pa_state="absent", watermark_found=False,
                                   watermark_payload=None, source_type=None, is_ours=False)


class Provenance:
    """Marks headshots and verifies images; holds the C2PA signer (loaded or created once)."""

    def __init__(self, credentials: ContentCredentials, *, visible_mark: bool = False, max_pixels: int = 50_000_000):
        self.credentials = credentials
        self.visible_mark = visible_mark
        self.max_pixels = max_pixels

    @classmethod
    def from_settings(cls, settings, *, signing: bool = True) -> "Provenance":
        """`signing=False` only reads the trust anchor (verify from the CLI creates no keys)."""
        keys_dir = Path(settings.data_dir) / "keys"
        cert = Path(settings.c2pa_cert_file) if str(settings.c2pa_cert_file) not in ("", ".") else None
        key = Path(settings.c2pa_key_file) if str(settings.c2pa_key_file) not in ("", ".") else None
        if signing:
            credentials = ContentCredentials(load_identity(keys_dir, cert_file=cert, key_file=key))
        else:
            credentials = ContentCredentials(None, load_anchor(keys_dir, cert_file=cert))
        return cls(credentials, visible_mark=settings.visible_mark, max_pixels=settings.max_pixels)

    # --- marking ----------------------------------------------------------------------------
    def mark_headshot(self, image: Image.Image, *, style_id: str, demo: bool,
                      visible_mark: bool | None = None) -> bytes:
        """The delivered file: JPEG bytes carrying watermark, XMP source type and a signed C2PA manifest.

        `visible_mark=False` leaves out the corner label even when the settings ask for it: for an image
        derived from a marked one that still shows its label (studio/downloads.py); None follows the settings.
        """
        rgb = image.convert("RGB")
        if min(rgb.size) < watermark.MIN_SIDE:
            # Demo models paint 64 px images; the watermark needs 256 px a side to be read back.
            factor = watermark.MIN_SIDE / min(rgb.size)
            rgb = rgb.resize((round(rgb.width * factor), round(rgb.height * factor)), Image.Resampling.LANCZOS)
        if self.visible_mark and visible_mark is not False:
            rgb = add_visible_mark(rgb)
        pixels = watermark.embed(np.asarray(rgb), watermark.WatermarkPayload(demo=demo))
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0, xmp=xmp_packet())
        definition = manifest_definition(generator_name=STUDIO_NAME, generator_version=STUDIO_VERSION,
                                         parameters={"style": style_id, "demo_model": demo})
        return self.credentials.sign(buffer.getvalue(), definition)

    # --- verification -----------------------------------------------------------------------
    def verify_image(self, data: bytes) -> VerificationReport:
        """Everything `data` says about its provenance. Never raises, whatever the bytes are."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    if im.width * im.height > self.max_pixels:
                        return _NOT_AN_IMAGE
                    mime = _MIME.get(im.format or "", "image/jpeg")
                    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or b""
                    pixels = np.asarray(im.convert("RGB"))
        except Exception:  # noqa: BLE001 - garbage, truncated, bombs, unknown formats: not an image
            return _NOT_AN_IMAGE
        credentials = self.credentials.read(data, mime)
        try:
            found = watermark.detect(pixels)
        except Exception:  # noqa: BLE001 - a detector failure must read as "not found", never crash verify
            found = None
        ours = credentials.state == "trusted" or found is not None
        return VerificationReport(
            readable=True, c2pa_present=credentials.present, c2pa_state=credentials.state,
            watermark_found=found is not None, watermark_payload=found.meaning() if found else None,
            source_type=source_type_from_xmp(xmp), is_ours=ours, c2pa_source_type=credentials.source_type,
            claim_generator=credentials.claim_generator, training_mining=credentials.training_mining)


def xmp_packet() -> bytes:
    """XMP saying "made by a trained model" (IPTC DigitalSourceType) and which tool; nothing personal."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        f'Iptc4xmpExt:DigitalSourceType="{TRAINED_ALGORITHMIC_MEDIA}" '
        f'xmp:CreatorTool="{STUDIO_NAME} {STUDIO_VERSION}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    ).encode("utf-8")


def source_type_from_xmp(xmp: bytes | str) -> str | None:
    """The IPTC DigitalSourceType in an XMP packet (attribute or element form), or None."""
    raw = xmp.encode("utf-8", "replace") if isinstance(xmp, str) else bytes(xmp)
    match = _SOURCE_TYPE.search(raw)
    return match.group(1).decode("utf-8", "replace") if match else None


def add_visible_mark(image: Image.Image) -> Image.Image:
    """`image` with a small "AI-generated" label in the bottom-right corner (settings.visible_mark)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out, "RGBA")
    font = ImageFont.load_default(size=max(10, out.width // 40))
    left, top, right, bottom = draw.textbbox((0, 0), VISIBLE_LABEL, font=font)
    pad = max(3, out.width // 200)
    x, y = out.width - (right - left) - 3 * pad, out.height - (bottom - top) - 3 * pad
    draw.rectangle((x - pad, y - pad, x + right - left + pad, y + bottom - top + pad), fill=(0, 0, 0, 140))
    draw.text((x - left, y - top), VISIBLE_LABEL, font=font, fill=(255, 255, 255, 230))
    return out
