"""Turn uploaded bytes into clean sRGB pixels, or refuse them: decode safely, strip everything.

`ingest(data, limits)` is the only way a photo enters the studio. It decides the type
from the content (never the file name), checks size limits before decoding, decodes
fully, applies the EXIF orientation, converts to 8-bit sRGB through the embedded ICC
profile, downscales to `limits.stored_max_side`, and rebuilds the picture from its
pixel array, so no metadata (EXIF, GPS, XMP, IPTC, ICC, comments, text chunks,
MakerNotes) can survive (promise 12). The original bytes are never written anywhere.

Reason codes of `PhotoRejected` raised here (stable: tests, JSON and the UI use them):

    empty_file        zero bytes
    file_too_large    more bytes than limits.max_bytes (checked before anything else)
    unsupported_type  not JPEG, PNG, WebP or HEIC/HEIF by content (GIF, SVG, HTML, PDF, TIFF, BMP, AVIF, ...)
    extra_data        bytes after the image's end (polyglots: JPEG+ZIP, PNG+HTML; also motion-photo videos)
    corrupt_file      truncated or undecodable
    too_many_pixels   width x height above limits.max_pixels, read from the header (decompression bombs)
    too_small         short side below limits.min_side
    animated          more than one frame (animated WebP, APNG, HEIF sequences)
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageFile
from PIL.JpegImagePlugin import JpegImageFile
from PIL.PngImagePlugin import PngImageFile
from PIL.WebPImagePlugin import WebPImageFile
from pillow_heif.as_plugin import HeifImageFile

from errors import OperatorError, PhotoRejected

if TYPE_CHECKING:
    from settings import Settings

EMPTY_FILE = "empty_file"
FILE_TOO_LARGE = "file_too_large"
UNSUPPORTED_TYPE = "unsupported_type"
EXTRA_DATA = "extra_data"
CORRUPT_FILE = "corrupt_file"
TOO_MANY_PIXELS = "too_many_pixels"
TOO_SMALL = "too_small"
ANIMATED = "animated"

ACCEPTED_TYPES = "a JPEG, PNG, WebP or HEIC photo"

# So that Image.open elsewhere (tests, previews) reads HEIC the same way; ingest itself
# instantiates the plugin classes directly (see _open).
pillow_heif.register_heif_opener()

_JPEG, _PNG, _WEBP, _HEIF = "JPEG", "PNG", "WEBP", "HEIF"
_PLUGIN = {_JPEG: JpegImageFile, _PNG: PngImageFile, _WEBP: WebPImageFile, _HEIF: HeifImageFile}
# HEIF brands with HEVC still images (libheif decodes these). AVIF shares the container
# but our libheif build has no AV1 decoder, so it is refused as an unsupported type.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_AVIF_BRANDS = {b"avif", b"avis"}
# EXIF orientation -> the transpose that makes the picture upright (ImageOps.exif_transpose's table).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# In a JPEG scan, 0xFF is followed by 0x00 (stuffing), a restart marker or more 0xFF fill;
# anything else is the next marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_MAX_JPEG_STREAMS = 8  # primary + MPF/gain-map images a phone may append
# Stored PNGs are deflated in this many independent pieces (see CleanPhoto.to_png_bytes):
# enough for four cores; each piece restarts the compressor's window, which costs <0.1% size.
PNG_SEGMENTS = 4
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KB window, "fastest" level hint; (0x7801 % 31 == 0)


@dataclass(frozen=True)
class IngestLimits:
    """Per-call limits; the defaults live once, in settings.py."""

    max_bytes: int  # largest accepted file, bytes
    max_pixels: int  # largest width x height
    min_side: int  # smallest accepted short side, pixels
    stored_max_side: int  # long side of the stored picture, pixels

    @classmethod
    def from_settings(cls, settings: "Settings") -> "IngestLimits":
        return cls(max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
                   min_side=settings.min_side_px, stored_max_side=settings.stored_max_side_px)


@dataclass(frozen=True, eq=False)
class CleanPhoto:
    """Stripped, upright, 8-bit sRGB pixels: the only form in which a photo is kept."""

    pixels: np.ndarray = field(repr=False)  # (H, W, 3) uint8, C-contiguous, read-only
    width: int
    height: int

    def __post_init__(self) -> None:
        p = self.pixels
        if p.dtype != np.uint8 or p.ndim != 3 or p.shape[2] != 3 or p.shape[:2] != (self.height, self.width):
            raise ValueError("CleanPhoto needs (height, width, 3) uint8 pixels matching width and height")
        if not p.flags.c_contiguous or p.flags.writeable:
            raise ValueError("CleanPhoto pixels must be C-contiguous and read-only (use CleanPhoto.from_array)")

    @classmethod
    def from_array(cls, pixels: np.ndarray) -> "CleanPhoto":
        """Copy `pixels` into a fresh read-only array: nothing else than the numbers comes along."""
        array = np.array(pixels, dtype=np.uint8, order="C", copy=True)
        array.flags.writeable = False
        return cls(pixels=array, width=array.shape[1], height=array.shape[0])

    def to_png_bytes(self, threads: int = 1) -> bytes:
        """A PNG with exactly three chunks (IHDR, IDAT, IEND): no metadata can be in it.

        Written by hand because it is twice as fast as Pillow's encoder at the same size
        (the "Up" filter computed with numpy, then zlib level 1): this is on the upload path.
        The rows are deflated in PNG_SEGMENTS independent pieces joined into one zlib
        stream (pigz's way), so `threads` > 1 can compress them side by side (zlib releases
        the GIL); the bytes are the same whatever `threads` is.
        """
        rows = self.pixels.reshape(self.height, self.width * 3)
        raw = np.empty((self.height, self.width * 3 + 1), dtype=np.uint8)
        raw[:, 0] = 2  # filter type Up: each byte minus the byte above it, modulo 256
        raw[0, 0] = 0  # the first row has nothing above it: filter None
        raw[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
        bounds = np.linspace(0, self.height, min(PNG_SEGMENTS, self.height) + 1).round().astype(int)
        pieces = [(raw[a:b].data, b == self.height) for a, b in zip(bounds[:-1], bounds[1:])]
        if threads > 1:
            with ThreadPoolExecutor(min(threads, len(pieces)), thread_name_prefix="png") as pool:
                deflated = pool.map(_deflate, pieces)
                checksum = zlib.adler32(raw.data)
                idat = b"".join(deflated)
        else:
            idat, checksum = b"".join(map(_deflate, pieces)), zlib.adler32(raw.data)
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
        stream = _ZLIB_HEADER + idat + struct.pack(">I", checksum)
        return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", stream)
                + _png_chunk(b"IEND", b""))

    @classmethod
    def from_png_bytes(cls, data: bytes) -> "CleanPhoto":
        """Read back a picture written by `to_png_bytes` (from the vault)."""
        with PngImageFile(io.BytesIO(data)) as image:
            image.load()
            return cls.from_array(np.asarray(image.convert("RGB")))


def ingest(data: bytes, limits: IngestLimits) -> CleanPhoto:
    """Decode `data` safely into a CleanPhoto, or raise PhotoRejected with a stable code."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone flipped Pillow's global switch: truncated files would be padded with grey
        # instead of refused. Refuse to run rather than accept damaged photos silently.
        raise OperatorError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; ingest requires it off.")
    if not data:
        raise PhotoRejected("This file is empty. Please choose the photo again; if it is in a cloud folder, "
                            "download it to your device first.", code=EMPTY_FILE)
    if len(data) > limits.max_bytes:
        raise PhotoRejected(f"This photo is larger than {limits.max_bytes / 2**20:g} MB. Please upload a smaller "
                            "copy (a phone photo is usually 2-8 MB).", code=FILE_TOO_LARGE)
    kind = _sniff(data)
    _check_nothing_after_image(data, kind)
    image = _open(data, kind, limits)
    try:
        return _clean(image, kind, limits)
    finally:
        image.close()


def _sniff(data: bytes) -> str:
    """The container type from the leading bytes, or unsupported_type."""
    if data.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _WEBP
    if data[4:8] == b"ftyp" and len(data) >= 16:
        size = struct.unpack(">I", data[:4])[0]
        brands = {data[8:12]} | {data[i:i + 4] for i in range(16, min(size, len(data), 256) - 3, 4)}
        if brands & _HEIF_BRANDS and not (brands & _AVIF_BRANDS and not brands & _HEVC_BRANDS):
            return _HEIF
    raise PhotoRejected(f"This file is not a photo we can read. Please upload {ACCEPTED_TYPES}.",
                        code=UNSUPPORTED_TYPE)


# --- structure walks: where does the image end? ------------------------------------------
# Anything after the image's end is refused. We never store or serve the original bytes,
# so a polyglot could do no harm here; refusing it anyway keeps "a photo and nothing
# else" a property of everything we accept, and catches disguised files early.

def _corrupt() -> PhotoRejected:
    return PhotoRejected("This photo seems damaged or incomplete, so we cannot read it. Please upload it again "
                         "or choose another photo.", code=CORRUPT_FILE)


def _extra_data() -> PhotoRejected:
    return PhotoRejected("This file contains more than a photo (for example a motion-photo video clip, or other "
                         f"data hidden after the image). Please upload {ACCEPTED_TYPES} as a still; re-saving it "
                         "in a photo editor removes the extra part.", code=EXTRA_DATA)


def _check_nothing_after_image(data: bytes, kind: str) -> None:
    if kind == _JPEG:
        end = _jpeg_end(data, 0)
        for _ in range(_MAX_JPEG_STREAMS):
            # Phones append further complete JPEG streams (MPF: gain maps, depth, stereo pairs).
            if not data.startswith(b"\xff\xd8\xff", end):
                break
            end = _jpeg_end(data, end)
        rest = data[end:]
        if rest.strip(b"\x00") and rest.strip(b"\xff"):  # some cameras pad with zeros or 0xFF
            raise _extra_data()
    elif kind == _PNG:
        if _png_end(data) != len(data):
            raise _extra_data()
    elif kind == _WEBP:
        riff_end = 8 + struct.unpack("<I", data[4:8])[0]
        if len(data) < riff_end:
            raise _corrupt()
        if len(data) > riff_end:
            raise _extra_data()
    else:
        _check_heif_boxes(data)


def _jpeg_end(data: bytes, pos: int) -> int:
    """Offset just after the EOI marker of the JPEG stream starting at `pos`."""
    pos += 2  # SOI
    n = len(data)
    while True:
        if pos + 2 > n or data[pos] != 0xFF:
            raise _corrupt()
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        if pos + 4 > n:
            raise _corrupt()
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if length < 2 or pos + 2 + length > n:
            raise _corrupt()
        pos += 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data runs until the next real marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                raise _corrupt()
            pos = found.start()


def _png_end(data: bytes) -> int:
    """Offset just after the IEND chunk."""
    pos, n = 8, len(data)
    while pos + 12 <= n:
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if not kind.isalpha():
            raise _corrupt()
        pos += 12 + length
        if pos > n:
            raise _corrupt()
        if kind == b"IEND":
            return pos
    raise _corrupt()


def _check_heif_boxes(data: bytes) -> None:
    """The file must be a sequence of ISO-BMFF boxes that ends exactly at the end of the file."""
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < 8:
            raise _extra_data()
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if not all(0x20 <= c < 0x7F for c in kind):
            raise _extra_data()
        if size == 1:
            if n - pos < 16:
                raise _corrupt()
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:  # "extends to the end of the file"
            size = n - pos
        if size < 8 or pos + size > n:
            raise _corrupt()
        pos += size


# --- decoding ----------------------------------------------------------------------------

def _open(data: bytes, kind: str, limits: IngestLimits) -> ImageFile.ImageFile:
    # The plugin class is instantiated directly instead of Image.open: only the sniffed
    # format can be tried, and Pillow's process-wide MAX_IMAGE_PIXELS check (a warning
    # that depends on global state) is replaced by our own per-call limit below.
    try:
        image = _PLUGIN[kind](io.BytesIO(data))
    except Image.DecompressionBombError:
        raise _too_many_pixels(limits) from None
    except (SyntaxError, OSError, ValueError, EOFError, IndexError, TypeError, struct.error, KeyError):
        raise _corrupt() from None
    return image


def _too_many_pixels(limits: IngestLimits | None, size: tuple[int, int] | None = None) -> PhotoRejected:
    shown = f" ({size[0]}x{size[1]} pixels)" if size else ""
    limit = f"; the limit is {limits.max_pixels / 1e6:g} megapixels" if limits else ""
    return PhotoRejected(f"This image is too large{shown}{limit}. Please upload a smaller copy.", code=TOO_MANY_PIXELS)


def _clean(image: ImageFile.ImageFile, kind: str, limits: IngestLimits) -> CleanPhoto:
    width, height = image.size  # from the header: nothing is decoded yet
    if width * height > limits.max_pixels:
        raise _too_many_pixels(limits, (width, height))
    if min(width, height) < limits.min_side:
        raise PhotoRejected(f"This photo is too small ({width}x{height} pixels). Please use one at least "
                            f"{limits.min_side} pixels on its short side: the original from your camera or phone, "
                            "not a thumbnail or a screenshot.", code=TOO_SMALL)
    if getattr(image, "n_frames", 1) > 1:
        raise PhotoRejected("This is an animation or a sequence of pictures. Please upload a single still photo.",
                            code=ANIMATED)
    scale = min(1.0, limits.stored_max_side / max(width, height))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if kind == _JPEG and scale < 0.5:
        # Decode at a reduced DCT scale (1/2, 1/4, 1/8), never below the target size:
        # a 12 MP JPEG decodes ~3x faster and we throw those pixels away anyway.
        image.draft("RGB", target)
    try:
        image.load()
        orientation = _orientation(image)
        icc = image.info.get("icc_profile")
        rgb = _to_srgb(image, icc)
    except Image.DecompressionBombError:
        raise _too_many_pixels(limits, (width, height)) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error):
        raise _corrupt() from None
    pixels = np.asarray(rgb)
    if pixels.shape[1] != target[0] or pixels.shape[0] != target[1]:
        # INTER_AREA averages the source pixels (no aliasing) and is ~3x faster than
        # Pillow's Lanczos at this size, which matters on the 250 ms upload path.
        pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
    if orientation in _ORIENTATION:
        pixels = np.asarray(Image.fromarray(pixels).transpose(_ORIENTATION[orientation]))
    # Rebuilt from the numbers alone: no metadata of the upload can come along.
    return CleanPhoto.from_array(pixels)


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1 = upright). pillow-heif has already applied HEIF's own rotation and reset it to 1."""
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # a damaged EXIF block must not cost the person their photo: treat as upright
        return 1


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """8-bit RGB in sRGB: alpha flattened on white, palette/grey/16-bit/CMYK handled, ICC applied."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit greyscale PNG: keep the top 8 bits
        values = np.asarray(image).astype(np.uint32) if mode != "I" else np.asarray(image).clip(0, 65535)
        image, mode = Image.fromarray((values >> 8).astype(np.uint8)), "L"
    elif mode == "1":
        image, mode = image.convert("L"), "L"
    elif mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        if mode == "P" and "transparency" not in image.info:
            image, mode = image.convert("RGB"), "RGB"
        else:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba).convert("L" if mode in ("LA", "La") else "RGB")
            mode = image.mode
    elif mode not in ("RGB", "L", "CMYK"):
        image, mode = image.convert("RGB"), "RGB"
    if icc:
        transform = _transform_to_srgb(hashlib.sha256(icc).digest(), icc, mode)
        if transform is not None:
            return ImageCms.applyTransform(image, transform)
    return image.convert("RGB") if mode != "RGB" else image


_SPACE_OF_MODE = {"RGB": "RGB ", "L": "GRAY", "CMYK": "CMYK"}


@functools.lru_cache(maxsize=16)
def _transform_to_srgb(digest: bytes, icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached LittleCMS transform from the embedded profile to sRGB, or None if it does not apply.

    `digest` is the cache key (hashing 0.5 MB profiles once, not comparing them). NOCACHE:
    LittleCMS's one-pixel cache is not thread-safe, and Gradio calls us from several threads.
    A profile that cannot be parsed, or describes another colour space than the pixels, is
    ignored: the pixels are then read as sRGB, which is what browsers do.
    """
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space != _SPACE_OF_MODE[mode]:
            return None
        return ImageCms.buildTransform(source, _srgb_profile(), mode, "RGB", flags=ImageCms.Flags.NOCACHE)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError):
        return None


@functools.lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _deflate(piece: tuple[memoryview, bool]) -> bytes:
    """Raw deflate of one run of rows; all but the last end on a byte boundary (a sync flush), not a final block."""
    data, last = piece
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
