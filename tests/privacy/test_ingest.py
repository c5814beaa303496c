"""privacy/intake/ingest.py: only real photos get in, and nothing but their pixels survives (promise 12)."""

from __future__ import annotations

import builtins
import io
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps

from errors import PhotoRejected
from privacy.intake.ingest import CleanPhoto, IngestLimits, ingest
from settings import load_settings

SMALL = IngestLimits(max_bytes=2_000_000, max_pixels=1_000_000, min_side=32, stored_max_side=256)
DEFAULTS = IngestLimits.from_settings(load_settings({}))
QUADRANTS = ((255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 255, 255))  # TL, TR, BL, BR


# --- helpers that make the files ---------------------------------------------------------

def quadrant_image(width: int = 96, height: int = 64) -> Image.Image:
    """Asymmetric picture: red, green / blue, white quadrants."""
    a = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    a[:h, :w], a[:h, w:], a[h:, :w], a[h:, w:] = QUADRANTS
    return Image.fromarray(a)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def quadrant_colours(pixels: np.ndarray) -> list[tuple[int, ...]]:
    h, w = pixels.shape[:2]
    centres = [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)]
    return [tuple(int(v) for v in pixels[y, x]) for y, x in centres]


def assert_colours_close(got, expected, tolerance: int = 24) -> None:
    for g, e in zip(got, expected):
        assert max(abs(a - b) for a, b in zip(g, e)) <= tolerance, (got, expected)


def rejected_code(data: bytes, limits: IngestLimits = SMALL) -> str:
    with pytest.raises(PhotoRejected) as info:
        ingest(data, limits)
    assert info.value.message  # every refusal says what to do
    return info.value.code


def png_chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        kinds.append(kind)
        pos += 12 + length
    return kinds


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one row of real data: a bomb's shape."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def display_p3_profile() -> bytes:
    """A minimal ICC v2 RGB profile with Display P3 primaries (D50-adapted) and gamma 2.2.

    Pillow can only create sRGB/LAB/XYZ profiles, and no P3 profile ships with the system,
    so the tags are packed by hand (ICC.1:2001-04: header, desc, wtpt, rgbXYZ, rgbTRC).
    """
    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z):
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    name = b"Test Display P3\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name + b"\0" * 4 + b"\0" * 4 + b"\0\0" + b"\0" + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">H", round(2.2 * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)), (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)),
            (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntr" + b"RGB " + b"XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + b"\0\0\0\0" + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# --- what comes out ------------------------------------------------------------------------

def test_clean_photo_is_read_only_contiguous_uint8_rgb():
    photo = ingest(encode(quadrant_image(), "PNG"), SMALL)
    assert photo.pixels.dtype == np.uint8 and photo.pixels.shape == (64, 96, 3)
    assert (photo.width, photo.height) == (96, 64)
    assert photo.pixels.flags.c_contiguous and not photo.pixels.flags.writeable
    with pytest.raises(ValueError):
        photo.pixels[0, 0] = 0


def test_png_round_trip_is_lossless():
    photo = ingest(encode(quadrant_image(), "PNG"), SMALL)
    again = CleanPhoto.from_png_bytes(photo.to_png_bytes())
    assert np.array_equal(again.pixels, photo.pixels)


def test_limits_come_from_settings():
    limits = IngestLimits.from_settings(load_settings({"HEADSHOT_MIN_SIDE_PX": "300",
                                                       "HEADSHOT_MAX_UPLOAD_MB": "2"}))
    assert limits.min_side == 300 and limits.max_bytes == 2 * 1024 * 1024


def test_large_photo_is_downscaled_to_the_stored_size():
    # 1000x750 -> 256x192: the JPEG is decoded at a reduced DCT scale, then resized.
    photo = ingest(encode(quadrant_image(1000, 750), "JPEG", quality=90), SMALL)
    assert (photo.width, photo.height) == (256, 192)
    assert_colours_close(quadrant_colours(photo.pixels), QUADRANTS)


def test_ingest_writes_nothing_to_disk(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ingest tried to open a file")
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    data = encode(quadrant_image(400, 300), "JPEG", exif=Image.Exif().tobytes())
    assert ingest(data, SMALL).width == 256


# --- refusals ------------------------------------------------------------------------------

def test_empty_file_is_rejected():
    assert rejected_code(b"") == "empty_file"


def test_file_over_the_byte_limit_is_rejected_before_decoding():
    # Garbage would be "unsupported_type" if it were looked at: the size check comes first.
    assert rejected_code(b"\x00" * (SMALL.max_bytes + 1)) == "file_too_large"


def _gif() -> bytes:
    return encode(quadrant_image(), "GIF")


def _animated_gif() -> bytes:
    frames = [quadrant_image(), quadrant_image().transpose(Image.Transpose.ROTATE_180)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


NOT_PHOTOS = {
    "svg": lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="900" height="900">'
                   b'<script>alert(1)</script></svg>',
    "html": lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
    "gif": _gif,
    "animated_gif": _animated_gif,
    "pdf": lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "tiff": lambda: encode(quadrant_image(), "TIFF"),
    "bmp": lambda: encode(quadrant_image(), "BMP"),
    "text": lambda: b"just some words, not a picture",
    "avif_brand": lambda: b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64,
}


@pytest.mark.parametrize("kind", sorted(NOT_PHOTOS))
def test_files_that_are_not_photos_are_rejected(kind):
    with pytest.raises(PhotoRejected) as info:
        ingest(NOT_PHOTOS[kind](), SMALL)
    assert info.value.code == "unsupported_type"
    assert "JPEG, PNG, WebP or HEIC" in info.value.message


def test_truncated_jpeg_is_rejected():
    data = encode(quadrant_image(200, 150), "JPEG")
    assert rejected_code(data[: len(data) // 2]) == "corrupt_file"


def test_truncated_png_is_rejected():
    data = encode(quadrant_image(200, 150), "PNG")
    assert rejected_code(data[: len(data) - 30]) == "corrupt_file"


def test_png_with_damaged_pixel_data_is_rejected():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8))
    data = bytearray(encode(image, "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 200: idat + 260] = b"\x55" * 60  # the chunk structure stays intact; the zlib stream does not
    assert rejected_code(bytes(data)) == "corrupt_file"


def test_jpeg_with_a_zip_appended_is_rejected():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    assert rejected_code(encode(quadrant_image(), "JPEG") + archive.getvalue()) == "extra_data"


def test_png_with_html_appended_is_rejected():
    data = encode(quadrant_image(), "PNG") + b"<html><script>alert(1)</script></html>"
    assert rejected_code(data) == "extra_data"


def test_webp_with_data_after_the_riff_container_is_rejected():
    assert rejected_code(encode(quadrant_image(), "WEBP") + b"<html></html>") == "extra_data"


def test_jpeg_followed_by_a_second_jpeg_stream_is_accepted():
    # Phones append gain maps / depth maps as further JPEG streams (MPF); that is a photo.
    data = encode(quadrant_image(), "JPEG") + encode(quadrant_image(48, 32), "JPEG")
    assert ingest(data, SMALL).width == 96


def test_header_claiming_ten_billion_pixels_is_rejected_without_decoding():
    assert rejected_code(png_with_header(100_000, 100_000), DEFAULTS) == "too_many_pixels"


def test_highly_compressible_big_png_is_rejected_by_the_per_call_limit():
    data = encode(Image.new("L", (2000, 2000)), "PNG")  # 4 MP of zeros in a few KB
    assert len(data) < 50_000
    assert rejected_code(data, SMALL) == "too_many_pixels"
    # Same file, a limit that allows it: the limit is the caller's, not a global one.
    roomy = IngestLimits(max_bytes=SMALL.max_bytes, max_pixels=5_000_000, min_side=32, stored_max_side=256)
    assert ingest(data, roomy).width == 256


def test_pillow_global_pixel_limit_is_not_relied_upon(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's own bomb check switched off
    assert rejected_code(png_with_header(20_000, 20_000), DEFAULTS) == "too_many_pixels"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # ...or made absurdly strict
    assert ingest(encode(quadrant_image(), "PNG"), SMALL).width == 96


def test_photo_below_the_minimum_side_is_rejected():
    assert rejected_code(encode(quadrant_image(600, 400), "JPEG"), DEFAULTS) == "too_small"


def test_thumbnail_fixture_is_rejected_as_too_small(face_bytes):
    assert rejected_code(face_bytes("obama_small.jpg"), DEFAULTS) == "too_small"


def test_animated_webp_is_rejected():
    frames = [quadrant_image(), quadrant_image().transpose(Image.Transpose.ROTATE_180)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert rejected_code(data) == "animated"


def test_animated_png_is_rejected():
    frames = [quadrant_image(), quadrant_image().transpose(Image.Transpose.ROTATE_180)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert rejected_code(data) == "animated"


def test_still_webp_is_accepted():
    photo = ingest(encode(quadrant_image(), "WEBP", lossless=True), SMALL)
    assert quadrant_colours(photo.pixels) == list(QUADRANTS)


# --- orientation and colour --------------------------------------------------------------

# The transpose that turns the upright picture into what a camera stores for each EXIF
# orientation (the inverse of what a viewer applies).
STORED_AS = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
             7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_every_exif_orientation_comes_out_upright(orientation):
    upright = quadrant_image()
    stored = upright.transpose(STORED_AS[orientation]) if STORED_AS[orientation] is not None else upright
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    # The test's own table agrees with Pillow's reference implementation...
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert reference.size == upright.size
    # ...and ingest produces the upright picture.
    photo = ingest(data, SMALL)
    assert (photo.width, photo.height) == upright.size
    assert_colours_close(quadrant_colours(photo.pixels), QUADRANTS)


def test_display_p3_profile_is_converted_to_srgb():
    colour = (60, 170, 90)
    image = Image.new("RGB", (64, 64), colour)
    plain = ingest(encode(image, "PNG"), SMALL).pixels[32, 32].astype(int)
    tagged = ingest(encode(image, "PNG", icc_profile=display_p3_profile()), SMALL).pixels[32, 32].astype(int)
    assert tuple(plain) == colour  # no profile: read as sRGB, unchanged
    # P3 green is more saturated than sRGB can be at these values: in sRGB the same colour
    # needs a larger spread between the channels.
    assert (tagged.max() - tagged.min()) > (plain.max() - plain.min()) + 10
    assert tagged[1] == tagged.max()


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # full magenta + yellow: red
    photo = ingest(encode(cmyk, "JPEG", quality=95), SMALL)
    assert_colours_close([tuple(int(v) for v in photo.pixels[32, 32])], [(255, 0, 0)], tolerance=30)


def test_sixteen_bit_greyscale_png_keeps_its_tones():
    values = np.full((64, 64), 0x8040, dtype=np.uint16)
    photo = ingest(encode(Image.fromarray(values), "PNG"), SMALL)
    assert tuple(photo.pixels[10, 10]) == (0x80, 0x80, 0x80)


def test_transparent_areas_are_flattened_on_white():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :32] = (200, 30, 30, 255)  # left half opaque red, right half fully transparent black
    photo = ingest(encode(Image.fromarray(rgba, "RGBA"), "PNG"), SMALL)
    assert tuple(photo.pixels[32, 10]) == (200, 30, 30)
    assert tuple(photo.pixels[32, 50]) == (255, 255, 255)


def test_palette_png_with_transparency_is_flattened_on_white():
    image = quadrant_image().convert("P")
    red_index = image.getpixel((10, 10))
    photo = ingest(encode(image, "PNG", transparency=red_index), SMALL)
    assert tuple(photo.pixels[10, 10]) == (255, 255, 255)  # red was transparent
    assert tuple(photo.pixels[50, 20]) == (0, 0, 255)


def test_greyscale_jpeg_becomes_three_equal_channels():
    photo = ingest(encode(Image.new("L", (64, 64), 120), "JPEG"), SMALL)
    r, g, b = (int(v) for v in photo.pixels[32, 32])
    assert r == g == b and abs(r - 120) <= 2


# --- metadata stripping (promise 12) -------------------------------------------------------

MARKERS = [b"SECRET-GPS-MARKER", b"SECRET-EXIF-MARKER", b"SECRET-MAKERNOTE", b"SECRET-XMP-MARKER",
           b"SECRET-COMMENT-MARKER", b"SECRET-TEXT-MARKER", b"SECRET-ITXT-MARKER"]


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = "SECRET-EXIF-MARKER"
    exif[ExifTags.Base.Make] = "TestCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 7.0)
    gps[ExifTags.GPS.GPSMapDatum] = "SECRET-GPS-MARKER"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.MakerNote] = b"SECRET-MAKERNOTE"
    return exif


def assert_nothing_but_pixels(png: bytes, markers=MARKERS) -> None:
    assert png_chunks(png) == [b"IHDR", b"IDAT", b"IEND"]
    for marker in markers:
        assert marker not in png
    back = Image.open(io.BytesIO(png))
    back.load()
    assert len(back.getexif()) == 0
    assert "icc_profile" not in back.info and "exif" not in back.info and "xmp" not in back.info
    assert not getattr(back, "text", {})


def test_gps_exif_xmp_icc_and_comment_are_stripped_from_jpeg():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(quadrant_image(), "JPEG", exif=exif_with_gps(), icc_profile=srgb,
                  comment=b"SECRET-COMMENT-MARKER", xmp=b"<x:xmpmeta>SECRET-XMP-MARKER</x:xmpmeta>")
    for marker in (b"SECRET-GPS-MARKER", b"SECRET-MAKERNOTE", b"SECRET-XMP-MARKER", b"SECRET-COMMENT-MARKER"):
        assert marker in data  # the test file really carries them
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    png = ingest(data, SMALL).to_png_bytes()
    assert_nothing_but_pixels(png)
    assert b"acsp" not in png  # the ICC profile signature


def test_text_chunks_and_exif_are_stripped_from_png():
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text("Comment", "SECRET-TEXT-MARKER")
    info.add_itxt("Description", "SECRET-ITXT-MARKER", lang="en")
    info.add_text("Location", "SECRET-GPS-MARKER", zip=True)
    data = encode(quadrant_image(), "PNG", pnginfo=info, exif=exif_with_gps(),
                  icc_profile=display_p3_profile())
    assert b"SECRET-TEXT-MARKER" in data and b"eXIf" in data and b"iCCP" in data
    assert_nothing_but_pixels(ingest(data, SMALL).to_png_bytes())


def test_metadata_is_stripped_from_webp():
    data = encode(quadrant_image(), "WEBP", exif=exif_with_gps(), xmp=b"<x>SECRET-XMP-MARKER</x>",
                  icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert b"SECRET-XMP-MARKER" in data
    assert_nothing_but_pixels(ingest(data, SMALL).to_png_bytes())


def test_fixture_exif_xmp_photoshop_and_icc_do_not_survive(face_bytes):
    data = face_bytes("obama_1.jpg")
    original = Image.open(io.BytesIO(data))
    assert {"exif", "xmp", "photoshop", "icc_profile"} <= set(original.info)
    fixture_markers = [b"Pete Souza", b"Oval Office", b"xmpmeta", b"Photoshop", b"sRGB IEC61966", b"Exif"]
    assert all(m in data for m in fixture_markers)
    assert_nothing_but_pixels(ingest(data, DEFAULTS).to_png_bytes(), markers=fixture_markers)


# --- HEIC ------------------------------------------------------------------------------------

def test_heic_round_trip():
    photo = ingest(encode(quadrant_image(), "HEIF", quality=95), SMALL)
    assert (photo.width, photo.height) == (96, 64)
    assert_colours_close(quadrant_colours(photo.pixels), QUADRANTS, tolerance=30)


def test_heic_orientation_comes_out_upright():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    stored = quadrant_image().transpose(STORED_AS[6])
    photo = ingest(encode(stored, "HEIF", quality=95, exif=exif.tobytes()), SMALL)
    assert (photo.width, photo.height) == (96, 64)
    assert_colours_close(quadrant_colours(photo.pixels), QUADRANTS, tolerance=30)


def test_heic_display_p3_is_converted_and_its_metadata_stripped():
    image = Image.new("RGB", (64, 64), (60, 170, 90))
    data = encode(image, "HEIF", quality=95, icc_profile=display_p3_profile(), exif=exif_with_gps().tobytes())
    assert b"SECRET-GPS-MARKER" in data and b"Test Display P3" in data
    photo = ingest(data, SMALL)
    pixel = photo.pixels[32, 32].astype(int)
    assert (pixel.max() - pixel.min()) > (170 - 60) + 10  # converted from P3: more spread in sRGB
    assert_nothing_but_pixels(photo.to_png_bytes(), markers=MARKERS + [b"Test Display P3"])


def test_heic_with_a_zip_appended_is_rejected():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x.txt", "hidden")
    assert rejected_code(encode(quadrant_image(), "HEIF") + archive.getvalue()) == "extra_data"


# --- robustness ------------------------------------------------------------------------------

def test_damaged_files_only_ever_raise_photo_rejected():
    """Seeded mutation fuzz (flip, delete, insert bytes) over every accepted format."""
    import random

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    seeds = [encode(noise, "JPEG"), encode(noise, "JPEG", progressive=True), encode(noise, "PNG"),
             encode(noise, "WEBP"), encode(noise, "WEBP", lossless=True), encode(noise, "HEIF")]
    rnd = random.Random(1)
    outcomes = set()
    for _ in range(400):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            pos, op = rnd.randrange(len(data)), rnd.random()
            if op < 0.6:
                data[pos] = rnd.randrange(256)
            elif op < 0.8:
                del data[pos:pos + rnd.randint(1, 50)]
            else:
                data[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 20)))
        try:
            photo = ingest(bytes(data), SMALL)
            assert photo.pixels.shape[2] == 3
            outcomes.add("accepted")
        except PhotoRejected as exc:
            outcomes.add(exc.code)
    assert {"accepted", "corrupt_file"} <= outcomes  # the fuzz reached both sides


def test_stored_png_is_the_same_however_many_threads_deflate_it():
    # The rows are deflated in independent pieces joined into one zlib stream; any
    # decoder reads it back exactly, and the bytes do not depend on the thread count.
    pixels = np.random.default_rng(3).integers(0, 256, (601, 517, 3), dtype=np.uint8)
    photo = CleanPhoto.from_array(pixels)
    png = photo.to_png_bytes()
    assert png == photo.to_png_bytes(threads=4)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), pixels)
    tiny = CleanPhoto.from_array(pixels[:2, :3])
    assert np.array_equal(CleanPhoto.from_png_bytes(tiny.to_png_bytes(threads=4)).pixels, pixels[:2, :3])
