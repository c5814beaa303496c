"""A delivered headshot in the sizes people need, each one marked again as AI-generated, built in memory.

    full   the stored file, byte for byte (already marked when it was made)
    1024   long side 1024 px (Lanczos); a smaller original is UPSCALED to it (demo models paint 64 px)
    600    600 x 600 square around head and shoulders: profile pictures
    400    400 x 400 square around head and shoulders: LinkedIn asks for at least 400 x 400

Resizing or cropping an image loses its C2PA manifest (it signs the exact bytes) and
may weaken the invisible watermark (it lives in 8 x 8-pixel blocks of the original
grid), so every derived size goes through `Provenance.mark_headshot` again with the
original's style id and demo flag: `verify_image` then finds a trusted manifest and a
watermark in each. Nothing here touches the disk or the vault. With the visible
"AI-generated" label on (settings.visible_mark), the 1024 px copy keeps the original's
(scaled) and gets no second one; a square gets a new one unless it reaches the
original's bottom-right corner, where the label is.

The square is placed by the rule training crops use (`faces/headshot_crop.py`: centred
below the eyes, shrunk to fit the frame) around the face the screening detector finds,
but `PROFILE_MARGIN` times wider: training's 4 inter-eye distances cut the crown off in
a profile picture, 5.2 keep the hair and the top of the shoulders (the face then fills
about half the square, as LinkedIn's photo guidance shows it). When it finds none — tiny random-weight models draw
noise, and a face turned away may be missed — the square is the largest that fits,
centred left to right and placed `NO_FACE_TOP_SHARE` of the way down the spare height:
a headshot's head sits in its upper part, so this keeps it rather than the chest.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from errors import UnknownDownloadSize
from faces.face_model import detect_faces
from faces.headshot_crop import CropSquare, fitted_crop
from privacy.lifecycle.export import image_extension
from privacy.marks.provenance import Provenance

FULL, LONG_1024, SQUARE_600, SQUARE_400 = "full", "1024", "600", "400"
DOWNLOAD_SIZES = (FULL, LONG_1024, SQUARE_600, SQUARE_400)
LONG_SIDE = {LONG_1024: 1024}
SQUARE_SIDE = {SQUARE_600: 600, SQUARE_400: 400}
PROFILE_MARGIN = 1.3  # times training's crop side (4 inter-eye distances): 5.2 eye distances a side
# Without a face: the square's top at this share of the height it cannot cover (0 = top, 0.5 = centred).
NO_FACE_TOP_SHARE = 0.2
_NAME_SUFFIX = {FULL: "", LONG_1024: "-1024px", SQUARE_600: "-600x600", SQUARE_400: "-400x400"}


def check_size(size: str) -> str:
    """`size` if the studio makes it; else UnknownDownloadSize with the sizes it does make."""
    if size not in DOWNLOAD_SIZES:
        raise UnknownDownloadSize(f"There is no download size {str(size)[:20]!r}; choose one of: full size, "
                                  "1024 px, 600 x 600 or 400 x 400.")
    return size


def download(stored: bytes, size: str, *, provenance: Provenance, style_id: str, demo: bool,
             face_threshold: float) -> bytes:
    """The headshot `stored` (its delivered bytes) at `size`; derived sizes are marked again (see module doc)."""
    if check_size(size) == FULL:
        return stored
    with Image.open(io.BytesIO(stored)) as im:
        image = im.convert("RGB")
    if size in LONG_SIDE:
        derived, shows_label = long_side(image, LONG_SIDE[size]), True
    else:
        side = SQUARE_SIDE[size]
        square = face_square(image, face_threshold=face_threshold)
        right, bottom = square.left + square.side, square.top + square.side
        derived = image.crop((square.left, square.top, right, bottom)).resize((side, side), Image.Resampling.LANCZOS)
        shows_label = right == image.width and bottom == image.height
    return provenance.mark_headshot(derived, style_id=style_id, demo=demo,
                                    visible_mark=False if shows_label else None)


def file_name(index: int, style_id: str, size: str, data: bytes) -> str:
    """e.g. headshot-03-linkedin_classic-400x400.jpg; `index` is the headshot's place in the gallery (from 1)."""
    # A background variant's reference ("linkedin_classic:white") has a ':', which no Windows file name may hold;
    # an outfit's ("…@blazer") is shown the same way.
    safe_style = style_id.replace(":", "-").replace("@", "-")
    return f"headshot-{index:02d}-{safe_style}{_NAME_SUFFIX[check_size(size)]}.{image_extension(data)}"


def long_side(image: Image.Image, target: int) -> Image.Image:
    """`image` scaled (Lanczos) so its longer side is `target` px, up or down, keeping its aspect ratio."""
    scale = target / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if max(size) != target:  # rounding: the long side must be exactly the target
        size = (target, size[1]) if image.width >= image.height else (size[0], target)
    return image.resize(size, Image.Resampling.LANCZOS)


def face_square(image: Image.Image, *, face_threshold: float) -> CropSquare:
    """The head-and-shoulders square of the largest face found, or the upper-biased square when there is none."""
    rgb = np.asarray(image.convert("RGB"))
    faces = detect_faces(rgb, threshold=face_threshold)
    if faces:
        face = faces[0]  # largest first
        return fitted_crop(face.landmarks, face.box, image.width, image.height, margin=PROFILE_MARGIN)
    side = min(image.size)
    left = (image.width - side) // 2
    top = round((image.height - side) * NO_FACE_TOP_SHARE)
    return CropSquare(left=left, top=top, side=side, ideal_side=float(side))
