"""Generate the hostile-upload corpus in memory: bad, tricky and borderline files, each with its expected verdict.

Nothing here is committed as a binary: every file is built from a face fixture or from
scratch when the tests run (`build_corpus(faces_dir)`, a few seconds). Each `Case` says
what screening must answer — "accepted" or a stable reason code from privacy/intake/ingest.py
or privacy/intake/screening.py — and why, so a change of verdict is a visible decision.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageDraw

ACCEPTED = "accepted"


@dataclass(frozen=True)
class Case:
    name: str  # a file name as a person might send it; the extension may lie on purpose
    data: bytes = field(repr=False)
    expected: str  # "accepted" or a reason code
    why: str


# --- building blocks --------------------------------------------------------------------------

def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, colour: int = 2,
         extra: bytes = b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + extra + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one): filter None, big-endian samples."""
    height, width, _ = pixels.shape
    wide = (pixels.astype(">u2") * 257).reshape(height, width * 3).view(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), wide]).tobytes()
    return _png(width, height, zlib.compress(raw, 6), bit_depth=16, colour=2)


def _exif_with(tags: dict[int, object], gps: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    if gps:
        exif[0x8825] = gps
    return exif.tobytes()


def _jpeg_with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """Insert one APPn/COM segment right after SOI."""
    return jpeg[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + jpeg[2:]


def _portrait(faces_dir: Path) -> Image.Image:
    """A tight head-and-shoulders crop of person A (780x792): one large, whole face."""
    with Image.open(faces_dir / "obama_4.jpg") as im:
        return im.convert("RGB").crop((380, 40, 1160, 832))


def _cat(size: int = 640) -> Image.Image:
    """A drawn cat face: ears, eyes, nose, whiskers. An animal, not a person."""
    im = Image.new("RGB", (size, size), (120, 170, 110))
    d = ImageDraw.Draw(im)
    c, r = size // 2, size // 3
    fur = (200, 130, 60)
    d.polygon([(c - r, c - r // 3), (c - r + r // 4, c - r - r // 2), (c - r // 3, c - r + r // 6)], fill=fur)
    d.polygon([(c + r, c - r // 3), (c + r - r // 4, c - r - r // 2), (c + r // 3, c - r + r // 6)], fill=fur)
    d.ellipse((c - r, c - r, c + r, c + r), fill=fur)
    for dx in (-r // 2, r // 2):
        d.ellipse((c + dx - r // 6, c - r // 4, c + dx + r // 6, c + r // 8), fill=(90, 200, 60))
        d.ellipse((c + dx - r // 24, c - r // 4, c + dx + r // 24, c + r // 8), fill=(0, 0, 0))
    d.polygon([(c - r // 10, c + r // 4), (c + r // 10, c + r // 4), (c, c + r // 3)], fill=(230, 120, 140))
    for dy in (-r // 12, 0, r // 12):
        d.line((c - r - r // 3, c + r // 3 + dy, c - r // 5, c + r // 3), fill=(30, 30, 30), width=3)
        d.line((c + r + r // 3, c + r // 3 + dy, c + r // 5, c + r // 3), fill=(30, 30, 30), width=3)
    return im


def _printed_photo(portrait: Image.Image) -> Image.Image:
    """The portrait printed on paper with a white border, lying on a desk, photographed at an angle."""
    desk = Image.new("RGB", (1200, 1000), (92, 64, 40))
    grain = np.random.default_rng(7).integers(-12, 12, (1000, 1200, 1), dtype=np.int16)
    desk = Image.fromarray(np.clip(np.asarray(desk, np.int16) + grain, 0, 255).astype(np.uint8))
    paper = Image.new("RGB", (portrait.width + 80, portrait.height + 80), (246, 244, 236))
    paper.paste(portrait, (40, 40))
    paper = paper.resize((paper.width * 3 // 4, paper.height * 3 // 4))
    # A mild perspective: the top edge further from the camera than the bottom edge.
    w, h = paper.size
    tilted = paper.transform((w, h), Image.Transform.QUAD, (30, 0, 0, h, w, h, w - 30, 0),
                             Image.Resampling.BICUBIC, fillcolor=(92, 64, 40))
    desk.paste(tilted, ((desk.width - w) // 2, (desk.height - h) // 2))
    return desk


def _animated(fmt: str, frames: list[Image.Image], **params) -> bytes:
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


# Which transpose makes an upright picture look like a camera stored it under each EXIF orientation
# (the inverse of what a viewer applies): the file's pixels are stored "wrong", the tag says how to fix them.
_STORED_AS = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """JPEG whose stored pixels need EXIF `orientation` applied to look like `upright`."""
    stored = upright if _STORED_AS[orientation] is None else upright.transpose(_STORED_AS[orientation])
    return _encode(stored, "JPEG", quality=95, exif=_exif_with({0x0112: orientation}))


# --- the corpus -------------------------------------------------------------------------------

def build_corpus(faces_dir: Path) -> list[Case]:
    portrait = _portrait(faces_dir)
    face_jpeg = _encode(portrait, "JPEG", quality=90)
    face_png = _encode(portrait, "PNG", compress_level=1)
    face_webp = _encode(portrait, "WEBP", quality=85)
    face_heic = io.BytesIO()
    pillow_heif.from_pillow(portrait).save(face_heic, quality=70)
    face_heic = face_heic.getvalue()
    blank = Image.new("RGB", (600, 600), (180, 190, 200))
    gps = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0), 5: 0, 6: 35.0}
    cases: list[Case] = []

    def add(name: str, data: bytes, expected: str, why: str) -> None:
        cases.append(Case(name, data, expected, why))

    # Empty, truncated, damaged
    add("empty.jpg", b"", "empty_file", "zero bytes")
    add("truncated.jpg", face_jpeg[: len(face_jpeg) // 2], "corrupt_file", "JPEG cut in the middle of its scan")
    add("truncated_header.jpg", face_jpeg[:300], "corrupt_file", "JPEG cut inside its headers")
    add("truncated.png", face_png[: len(face_png) // 2], "corrupt_file", "PNG cut inside IDAT")
    add("truncated.webp", face_webp[: len(face_webp) // 2], "corrupt_file", "RIFF size larger than the file")
    add("truncated.heic", face_heic[: len(face_heic) // 2], "corrupt_file", "ISO-BMFF box runs past the end")
    add("soi_eoi_only.jpg", b"\xff\xd8\xff\xd9", "corrupt_file", "a JPEG with no frame at all")
    add("magic_then_text.jpg", b"\xff\xd8\xff" + b"hello, I am not a photo" * 4, "corrupt_file",
        "JPEG magic followed by text")
    bad_crc = bytearray(face_png)
    bad_crc[29] ^= 0xFF  # the IHDR CRC
    add("bad_crc.png", bytes(bad_crc), "corrupt_file", "PNG header CRC does not match")
    add("zero_size.png", _png(0, 0, zlib.compress(b"")), "corrupt_file", "PNG declaring 0x0 pixels")
    scrambled = bytearray(face_jpeg)
    scrambled[len(scrambled) // 3: len(scrambled) // 3 + 4000] = bytes(4000)
    add("scan_zeroed.jpg", bytes(scrambled), ACCEPTED,
        "damaged entropy data still decodes (greyed blocks) and the face is still found: decoders tolerate it")

    # Size limits and decompression bombs
    add("too_large.jpg", face_jpeg + b"\x00" * (26 * 2**20), "file_too_large", "26 MB, above the 25 MB limit")
    add("bomb_dimensions.png", _png(100_000, 100_000, zlib.compress(b"\x00" * 1024)), "too_many_pixels",
        "10 gigapixels declared in a 100-byte file")
    sof = bytearray(_encode(Image.new("RGB", (16, 16)), "JPEG"))
    at = sof.find(b"\xff\xc0")
    sof[at + 5:at + 9] = struct.pack(">HH", 65000, 65000)
    add("bomb_dimensions.jpg", bytes(sof), "too_many_pixels", "65000x65000 declared in the JPEG frame header")
    add("bomb_dimensions.webp", _webp_lossless_size(16384, 16384), "too_many_pixels",
        "16384x16384 declared in a 60-byte lossless WebP header")
    vp8x = _encode(Image.new("RGBA", (16, 16), (1, 2, 3, 4)), "WEBP", lossless=True, exif=_exif_with({0x0112: 1}))
    add("canvas_mismatch.webp", _webp_canvas(vp8x, 16384, 16384), "corrupt_file",
        "VP8X canvas 16384x16384 around a 16x16 bitmap: libwebp refuses the inconsistent file")
    zbomb = _zeros_deflated((8000 * 3 + 1) * 8000)
    add("zlib_bomb.png", _png(8000, 8000, zbomb), "too_many_pixels",
        f"192 MB of pixels from a {len(zbomb) // 1024} KB IDAT")
    ztxt = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 64 * 2**20, 9))
    add("ztxt_bomb.png", _insert_png_chunk(face_png, ztxt), "corrupt_file",
        "a 64 MB compressed text chunk: Pillow refuses text chunks over its 1 MB limit")
    add("tiny_1x1.png", _encode(Image.new("RGB", (1, 1)), "PNG"), "too_small", "one pixel")
    add("thumbnail.jpg", _encode(portrait.resize((300, 305)), "JPEG"), "too_small", "a face, but 300 px")

    # Not photos, whatever the extension says
    add("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="600">'
        b'<script>alert(document.cookie)</script><circle cx="300" cy="300" r="200"/></svg>', "unsupported_type",
        "SVG with a script")
    add("page.png", b"<!doctype html><html><body><script>alert(1)</script></body></html>", "unsupported_type",
        "HTML named .png")
    add("document.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "unsupported_type", "a PDF named .jpg")
    add("archive.jpg", _zip({"a.txt": b"hello"}), "unsupported_type", "a ZIP named .jpg")
    add("noise.jpg", np.random.default_rng(1).bytes(4096), "unsupported_type", "random bytes")
    add("face.gif", _encode(portrait.convert("P"), "GIF"), "unsupported_type", "GIF is not an accepted photo type")
    add("face.bmp", _encode(portrait, "BMP"), "unsupported_type", "BMP")
    add("face.avif", _encode(portrait, "AVIF", quality=60), "unsupported_type", "AVIF: no AV1 decoder in libheif here")
    add("face_tiff_named.jpg", _encode(portrait, "TIFF"), "unsupported_type", "TIFF named .jpg")
    add("pages.tiff", _animated("TIFF", [portrait, blank.resize(portrait.size)]), "unsupported_type",
        "multi-frame TIFF")
    add("face_png_named.jpg", face_png, ACCEPTED, "a PNG named .jpg: the content decides, not the name")
    add("face_jpeg_named.png", face_jpeg, ACCEPTED, "a JPEG named .png")

    # Polyglots and hidden payloads
    add("jpeg_zip_polyglot.jpg", face_jpeg + _zip({"payload.sh": b"#!/bin/sh\nrm -rf /\n"}), "extra_data",
        "JPEG followed by a ZIP archive")
    add("png_html_polyglot.png", face_png + b"<html><script>alert(1)</script></html>", "extra_data",
        "PNG followed by HTML")
    add("webp_trailer.webp", face_webp + b"<script>alert(1)</script>", "extra_data", "WebP with bytes after RIFF")
    add("heic_zip_polyglot.heic", face_heic + _zip({"payload.sh": b"#!/bin/sh\n"}), "extra_data",
        "HEIC followed by a ZIP: the ZIP header is not an ISO-BMFF box")
    add("heic_trailer.heic", face_heic + b"<ok>", "extra_data", "HEIC with 4 stray bytes after the last box")
    add("html_in_text_chunk.png", _insert_png_chunk(face_png, _png_chunk(b"tEXt", b"Comment\x00<script>alert(1)"
                                                                          b"</script>")),
        ACCEPTED, "HTML inside a PNG text chunk: metadata, stripped on ingest")
    add("zero_padded.jpg", face_jpeg + b"\x00" * 512, ACCEPTED, "zero padding after EOI, as some cameras write")

    # Animation
    frames = [portrait, portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    add("animated.gif", _animated("GIF", [f.convert("P") for f in frames]), "unsupported_type", "animated GIF")
    add("animated.webp", _animated("WEBP", frames, quality=60), "animated", "animated WebP")
    add("animated.png", _animated("PNG", frames), "animated", "APNG with two frames")

    # Colour modes and depths
    add("cmyk.jpg", _encode(portrait.convert("CMYK"), "JPEG", quality=90), ACCEPTED, "CMYK JPEG")
    add("grey.jpg", _encode(portrait.convert("L"), "JPEG", quality=90), ACCEPTED, "greyscale JPEG")
    add("grey16.png", _encode(Image.fromarray((np.asarray(portrait.convert("L")).astype(np.uint16) * 257)), "PNG"),
        ACCEPTED, "16-bit greyscale PNG")
    add("rgb48.png", _png_16bit_rgb(np.asarray(portrait)), ACCEPTED, "16-bit-per-channel RGB PNG")
    rgba = portrait.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(portrait.size).point(lambda v: 128 + v // 2))
    add("alpha.png", _encode(rgba, "PNG"), ACCEPTED, "RGBA PNG with partial transparency")
    add("alpha.webp", _encode(rgba, "WEBP", lossless=True), ACCEPTED, "lossless WebP with alpha")
    add("grey_alpha.png", _encode(rgba.convert("LA"), "PNG"), ACCEPTED, "LA PNG")
    add("palette_transparent.png", _encode(portrait.convert("P"), "PNG", transparency=0), ACCEPTED,
        "palette PNG with a transparent index")
    add("bilevel.png", _encode(blank.convert("1"), "PNG"), "no_face", "1-bit image of nothing")
    add("interlaced.png", _png_adam7(np.asarray(portrait)), ACCEPTED, "Adam7-interlaced PNG")
    add("progressive.jpg", _encode(portrait, "JPEG", quality=85, progressive=True), ACCEPTED, "progressive JPEG")
    add("face.webp", face_webp, ACCEPTED, "lossy WebP")
    add("face.heic", face_heic, ACCEPTED, "HEIC from a phone")
    wrong_icc = _encode(portrait, "JPEG", quality=90, icc_profile=_cmyk_like_icc())
    add("wrong_icc.jpg", wrong_icc, ACCEPTED, "an ICC profile for another colour space: ignored")
    add("garbage_icc.jpg", _encode(portrait, "JPEG", quality=90, icc_profile=b"\x00garbage" * 64), ACCEPTED,
        "an unparseable ICC profile: ignored")

    # Shapes
    add("extreme_tall.png", _encode(Image.new("RGB", (512, 20000), (90, 90, 90)), "PNG"), "no_face",
        "512x20000: within the pixel limit, nothing in it")
    add("extreme_wide.png", _encode(Image.new("RGB", (20000, 512), (90, 90, 90)), "PNG"), "no_face", "20000x512")
    add("sliver.png", _encode(Image.new("RGB", (60000, 2)), "PNG"), "too_small", "60000x2")

    # EXIF: orientation 1-8, huge, malformed, GPS
    for orientation in range(1, 9):
        add(f"orientation_{orientation}.jpg", oriented_jpeg(portrait, orientation), ACCEPTED,
            f"EXIF orientation {orientation}: turned upright on ingest")
    huge_exif = _exif_with({0x010E: "x" * 60_000})
    add("exif_huge.jpg", _encode(portrait, "JPEG", quality=90, exif=huge_exif), ACCEPTED, "a 60 KB EXIF description")
    many_app = face_jpeg[:2] + b"".join(
        struct.pack(">BBH", 0xFF, 0xE2 + i % 12, 60_006) + b"JUNK" + bytes([i % 256]) * 60_000 for i in range(200)
    ) + face_jpeg[2:]
    add("metadata_12mb.jpg", many_app, ACCEPTED, "200 APPn segments, 12 MB of metadata around a small photo")
    add("exif_malformed.jpg",
        _jpeg_with_segment(face_jpeg, 0xE1, b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x01" * 40),
        ACCEPTED, "EXIF whose first IFD offset points far outside the block: read as upright")
    loop = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 8) \
        + struct.pack("<I", 8)
    add("exif_ifd_loop.jpg", _jpeg_with_segment(face_jpeg, 0xE1, loop), ACCEPTED, "an EXIF sub-IFD pointing at itself")
    add("exif_bad_orientation.jpg", _encode(portrait, "JPEG", exif=_exif_with({0x0112: 99})), ACCEPTED,
        "orientation 99: not a valid value, treated as upright")
    add("gps.jpg", _encode(portrait, "JPEG", quality=90, exif=_exif_with({0x010F: "PhoneMaker", 0x0110: "Phone 12"},
                                                                          gps)), ACCEPTED,
        "GPS position, camera make and model: all stripped")
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description exif:GPSLatitude="48,51.48N"/></rdf:RDF></x:xmpmeta>')
    add("xmp_comment.jpg", _jpeg_with_segment(_encode(portrait, "JPEG", quality=90, xmp=xmp), 0xFE,
                                              b"secret comment: home address"), ACCEPTED,
        "XMP with GPS and a JPEG comment: stripped")

    # People and faces
    add("two_people.jpg", (faces_dir / "two_people.jpg").read_bytes(), "several_faces", "two people in the frame")
    add("two_faces_side_by_side.jpg", _encode(_side_by_side(portrait, faces_dir), "JPEG"), "several_faces",
        "person A beside person B")
    add("face_cut_off_side.jpg", _encode(portrait.crop((280, 0, 780, 792)).resize((600, 950)), "JPEG"),
        "face_cut_off", "the left quarter of the face is outside the frame")
    add("face_cut_off_top.jpg", _encode(portrait.crop((0, 229, 780, 792)), "JPEG"), "face_cut_off",
        "the forehead is outside the frame")
    add("tiny_face.jpg", _encode(_tiny_face(portrait), "JPEG", quality=92), "face_too_small",
        "a face 110 px wide in a 1400 px photo")
    add("cat.png", _encode(_cat(), "PNG"), "no_face", "a cat")
    add("landscape.jpg", _encode(_landscape(), "JPEG"), "no_face", "no one in the picture")
    add("printed_photo.jpg", _encode(_printed_photo(portrait), "JPEG", quality=90), ACCEPTED,
        "a photo of a printed photo: one whole face, large enough. Screening checks faces, not liveness; "
        "consent covers whose face it is")
    return cases


# --- helpers of the corpus ------------------------------------------------------------------------

def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _zeros_deflated(size: int) -> bytes:
    """zlib stream of `size` zero bytes, built without holding them in memory."""
    packer, block, parts = zlib.compressobj(9), bytes(2**20), []
    for _ in range(size // len(block)):
        parts.append(packer.compress(block))
    parts.append(packer.compress(bytes(size % len(block))))
    parts.append(packer.flush())
    return b"".join(parts)


def _insert_png_chunk(png: bytes, chunk: bytes) -> bytes:
    ihdr_end = 8 + 25  # signature + IHDR chunk
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _webp_canvas(webp: bytes, width: int, height: int) -> bytes:
    """Rewrite (or add) the VP8X canvas size of a WebP file."""
    at = webp.find(b"VP8X")
    if at < 0:
        raise ValueError("needs an extended WebP")
    body = bytearray(webp)
    body[at + 12:at + 18] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return bytes(body)


def _webp_lossless_size(width: int, height: int) -> bytes:
    """A tiny lossless WebP whose VP8L header declares width x height (14 bits each)."""
    body = bytearray(_encode(Image.new("RGB", (16, 16), (5, 6, 7)), "WEBP", lossless=True))
    at = body.find(b"VP8L") + 9  # fourcc, chunk size, signature byte 0x2f
    bits = int.from_bytes(body[at:at + 4], "little") & ~((1 << 28) - 1)
    body[at:at + 4] = (bits | (width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    return bytes(body)


def _png_adam7(pixels: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG (Pillow writes only non-interlaced ones)."""
    height, width, _ = pixels.shape
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += np.hstack([np.zeros((sub.shape[0], 1), np.uint8), sub.reshape(sub.shape[0], -1)]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 6))
            + _png_chunk(b"IEND", b""))


def _cmyk_like_icc() -> bytes:
    """A syntactically valid profile header that claims a CMYK data colour space."""
    from PIL import ImageCms
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    return profile[:16] + b"CMYK" + profile[20:]


def _side_by_side(portrait: Image.Image, faces_dir: Path) -> Image.Image:
    with Image.open(faces_dir / "biden_2.jpg") as im:
        other = im.convert("RGB").crop((300, 150, 1020, 942)).resize(portrait.size)
    canvas = Image.new("RGB", (portrait.width * 2, portrait.height))
    canvas.paste(portrait, (0, 0))
    canvas.paste(other, (portrait.width, 0))
    return canvas


def _tiny_face(portrait: Image.Image) -> Image.Image:
    canvas = _landscape(1400, 1400)
    small = portrait.resize((240, 244))
    canvas.paste(small, (580, 500))
    return canvas


def _landscape(width: int = 900, height: int = 640) -> Image.Image:
    sky = np.linspace([120, 170, 230], [200, 220, 240], height // 2).astype(np.uint8)
    ground = np.linspace([70, 120, 50], [40, 80, 30], height - height // 2).astype(np.uint8)
    column = np.vstack([sky, ground])
    return Image.fromarray(np.repeat(column[:, None, :], width, axis=1))
