"""Caption a training crop with what varies between photos and is not the person, from its pixels alone.

With one fixed caption, whatever the selfies share (a white wall, window light) is
learned as part of "ohwx person" and bleeds into every style. Naming it in the caption
lets the model attribute it to those words instead (the reason LoRA Ease and
diffusers' advanced DreamBooth script caption every image, there with BLIP). Here no
model is downloaded: simple statistics of the crop name
  * the background's colour (the crop's top and side borders, where the head is not),
  * the light: bright / dim from the face region's luminance, warm / cool from the
    grey-world white balance of the background (skin would bias it warm),
  * the framing: "head and shoulders", or "close-up" when the square had to shrink,
  * "black and white" for near-zero saturation;
and, from dlib's 68 landmarks of the face (faces/face_parts.py) where the caller has them, what the
person wears or does in this photo and not in every photo, so it binds to its words and not to the
trigger (selfies' clothes otherwise come back in every style):
  * "smiling": a wide mouth whose corners sit above the middle of the lips (`is_smiling`),
  * "glasses": a frame's horizontal edge across the bridge of the nose (`wears_glasses`),
  * "wearing <colour>": the clothing colour below the chin, where it differs from skin and backdrop.
Never who the person is: no age, gender, ethnicity or hair guesses.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

BORDER = 0.12  # width of the background band, as a fraction of the crop side
GREY_SATURATION = 0.18  # below this a colour is named as a grey
MONOCHROME_SATURATION = 0.04  # mean saturation below which the photo is black and white
BRIGHT_LUMA, DIM_LUMA = 0.62, 0.30  # mean face luminance (0-1) thresholds
WARM_RATIO, COOL_RATIO = 1.15, 0.95  # mean red / mean blue of the background (grey world: 1.0 is neutral)
CLOSE_UP_FIT = 0.85  # crops shrunk below this share of the ideal side show less than head and shoulders
_HUES = ((15, "red"), (40, "orange"), (65, "yellow"), (160, "green"), (195, "teal"), (255, "blue"),
         (290, "purple"), (340, "pink"), (360, "red"))  # upper hue bound in degrees -> name


def colour_name(rgb: np.ndarray) -> str:
    """A plain-English name for an RGB colour (0-255), e.g. "light grey", "dark blue"."""
    r, g, b = (float(c) / 255 for c in rgb)
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    if saturation < GREY_SATURATION or lightness < 0.1 or lightness > 0.93:
        for bound, name in ((0.12, "black"), (0.35, "dark grey"), (0.65, "grey"), (0.85, "light grey")):
            if lightness < bound:
                return name
        return "white"
    base = next(name for bound, name in _HUES if hue * 360 <= bound)
    return f"dark {base}" if lightness < 0.3 else f"light {base}" if lightness > 0.7 else base


# Smile, measured on the fixture photos (tests/fixtures/faces): the two smiling ones have a mouth 0.85-0.90
# outer-eye-corner distances wide with corners 0.09-0.11 above the lips' middle; neutral, pursed and talking
# ones 0.60-0.69 and -0.06 to +0.01. Thresholds half-way.
SMILE_WIDTH, SMILE_LIFT = 0.77, 0.05
# Glasses: the strongest row-mean vertical gradient (0-1) across the nose bridge (`wears_glasses`) is
# 0.017-0.028 on the bare-faced fixture photos and 0.32-0.51 with dark frames drawn on them. No fixture
# photo wears real glasses: rimless ones (no bridge edge) are not expected to be seen.
GLASSES_EDGE = 0.12
CLOTHING_BAND = 0.12  # bottom share of the crop read for clothing, below the chin
CLOTHING_SHARE = 0.3  # at least this share of the band must be neither skin nor backdrop to name a colour
NOT_BACKDROP = 45.0  # RGB distance from the backdrop's colour below which a pixel is backdrop
# Skin: the cheeks' chromaticity (r, g shares of r + g + b) within SKIN_CHROMA, at 0.15-1.4x their brightness,
# so a neck in the chin's shadow is skin too, where an RGB distance would call it dark red clothing.
SKIN_CHROMA, SKIN_DARKER, SKIN_BRIGHTER = 0.035, 0.15, 1.4


def is_smiling(points: np.ndarray) -> bool:
    """A smile from the 68 landmarks (iBUG indexing): wide mouth, corners above the middle of the lips."""
    eyes = float(np.linalg.norm(points[45] - points[36]))  # outer eye corners: the scale of this face
    width = float(np.linalg.norm(points[54] - points[48])) / eyes
    lift = ((points[62, 1] + points[66, 1]) / 2 - (points[48, 1] + points[54, 1]) / 2) / eyes
    return width > SMILE_WIDTH and lift > SMILE_LIFT


def wears_glasses(px: np.ndarray, points: np.ndarray) -> bool:
    """A frame's bridge: a sharp horizontal edge between the inner eye corners, where bare skin is smooth.

    The patch runs from between the brows and the eyes down to the top of the nose (landmarks 39/42 inner eye
    corners, 21/22 inner brows, 29 the nose); the measure is the strongest row of mean vertical gradient.
    """
    grey = px.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255
    left, right = points[39, 0], points[42, 0]
    inset = 0.15 * (right - left)
    brow, eye = (points[21, 1] + points[22, 1]) / 2, (points[39, 1] + points[42, 1]) / 2
    top, bottom = brow + 0.4 * (eye - brow), points[29, 1]
    rows = grey[int(max(top, 0)):int(bottom) + 1, int(left + inset):int(right - inset) + 1]
    if rows.shape[0] < 3 or rows.shape[1] < 2:
        return False
    return float(np.abs(np.diff(rows, axis=0)).mean(axis=1).max()) > GLASSES_EDGE


def skin_colour(px: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The median colour of both cheeks and the nose's bridge (5 x 5 pixels each), what a bare neck looks like."""
    spots = [(points[31] + points[3]) / 2, (points[35] + points[13]) / 2, points[29]]
    side = px.shape[0]
    patches = [px[max(int(y) - 2, 0):min(int(y) + 3, side), max(int(x) - 2, 0):min(int(x) + 3, side)].reshape(-1, 3)
               for x, y in spots]
    patches = np.concatenate(patches)
    return np.median(patches, axis=0) if len(patches) else np.full(3, np.inf)


def skin_like(rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Per pixel of (n, 3) `rgb`: the chromaticity of `skin` at a brightness a shadow or a highlight may give it."""
    total, skin_total = rgb.sum(axis=1) + 1e-6, float(skin.sum()) + 1e-6
    chroma = np.linalg.norm(rgb[:, :2] / total[:, None] - skin[:2] / skin_total, axis=1)
    return (chroma < SKIN_CHROMA) & (total > SKIN_DARKER * skin_total) & (total < SKIN_BRIGHTER * skin_total)


def clothing_colour(px: np.ndarray, points: np.ndarray, backdrop: np.ndarray) -> str | None:
    """The colours worn below the chin (the crop's bottom band, within the jaw's width), e.g. "dark blue and
    white", or None where that band is mostly skin (neck) or backdrop."""
    side = px.shape[0]
    left, right = int(max(points[2, 0], 0)), int(min(points[14, 0], side))
    top = max(int(side * (1 - CLOTHING_BAND)), int(points[8, 1]) + 1)  # never above the chin
    band = px[top:, left:right].reshape(-1, 3)
    if band.shape[0] == 0:
        return None
    skin = skin_colour(px, points)
    keep = ~skin_like(band, skin) & (np.linalg.norm(band - backdrop, axis=1) > NOT_BACKDROP)
    if keep.mean() < CLOTHING_SHARE:
        return None
    # Clothes are often two colours (a dark jacket over a white shirt), whose mean or median is a grey nobody
    # wears: split the clothing pixels into two colours (2-means, from the darkest and the lightest) and name
    # each that covers CLOTHING_SHARE of them, the larger first.
    worn = band[keep]
    luma = worn @ np.array([0.299, 0.587, 0.114])
    centres = worn[[int(luma.argmin()), int(luma.argmax())]]
    for _ in range(10):
        nearest = np.linalg.norm(worn[:, None] - centres[None], axis=2).argmin(axis=1)
        centres = np.array([worn[nearest == k].mean(axis=0) if (nearest == k).any() else centres[k] for k in (0, 1)])
    shares = np.bincount(nearest, minlength=2) / len(worn)
    names = [colour_name(centres[k]) for k in np.argsort(-shares) if shares[k] >= CLOTHING_SHARE]
    return " and ".join(dict.fromkeys(names))  # one name when both halves are the same colour


def describe(image: Image.Image, *, fit: float = 1.0, points: np.ndarray | None = None) -> str:
    """E.g. "head and shoulders, smiling, wearing dark blue, light grey background, bright warm light".

    `points`: the face's 68 landmarks in this crop's pixels (faces/face_parts.py), for the face's words.
    """
    px = np.asarray(image.convert("RGB"), dtype=np.float32)
    side = px.shape[0]
    band = max(1, int(side * BORDER))
    # Top band and the upper two thirds of the side bands: the bottom holds shoulders and clothes.
    lower = side * 2 // 3
    background = np.concatenate([px[:band].reshape(-1, 3), px[band:lower, :band].reshape(-1, 3),
                                 px[band:lower, -band:].reshape(-1, 3)])
    centre = px[side // 4: 3 * side // 4, side // 4: 3 * side // 4].reshape(-1, 3)
    luma = float((centre @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean()) / 255
    mean = background.mean(axis=0)
    spread = px.reshape(-1, 3).max(axis=1) - px.reshape(-1, 3).min(axis=1)
    monochrome = float(spread.mean()) / 255 < MONOCHROME_SATURATION

    parts = ["close-up" if fit < CLOSE_UP_FIT else "head and shoulders"]
    if points is not None:
        parts += ["smiling"] if is_smiling(points) else []
        parts += ["glasses"] if wears_glasses(px, points) else []
        worn = clothing_colour(px, points, mean)
        parts += [f"wearing {worn}"] if worn else []
    parts.append(f"{colour_name(background.mean(axis=0))} background")
    light = "bright" if luma > BRIGHT_LUMA else "dim" if luma < DIM_LUMA else ""
    if not monochrome:
        ratio = float(mean[0]) / max(float(mean[2]), 1.0)
        tone = "warm" if ratio > WARM_RATIO else "cool" if ratio < COOL_RATIO else ""
        light = " ".join(p for p in (light, tone) if p)
    parts.append(f"{light or 'even'} light")
    if monochrome:
        parts.append("black and white")
    return ", ".join(parts)
