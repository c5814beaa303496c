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
  * "black and white" for near-zero saturation.
Never personal attributes: no age, gender, ethnicity, expression or hair guesses.
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


def describe(image: Image.Image, *, fit: float = 1.0) -> str:
    """E.g. "head and shoulders, light grey background, bright warm light" for one square crop."""
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
