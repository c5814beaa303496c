"""Paint a team's exact backdrop colour behind the person in a generated headshot.

A team's look names one background colour (issue 16: "exact hex, applied the same way for
everyone"). The prompt asks the model for it, which gets roughly that colour at best; this
module makes it a property of the image. What is exact and what is approximate:

    exact        every pixel classified as background is the "#rrggbb" itself, bit for bit;
                 pixels well inside the person are the generated ones, bit for bit.
    approximate  where the boundary of the person lies: found by OpenCV's GrabCut, seeded from
                 the face box of the studio's face detector (faces/face_model.py, dlib).

Exact in the image generation hands on. The delivered file is marked later (privacy/marks/provenance.py):
the invisible watermark moves every pixel's chroma by a few levels and JPEG rings at edges, so a
download is the colour to within ~5 of 255 per channel away from the person, not bit for bit.

The procedure is the same for every image and every member of every team: the same colour, the
same seeds, the same edge width, the same GrabCut iterations at the same working size and the same
random seed, so the same image and colour always give the same result, in any thread.

    1. Find the largest face (dlib HOG, as scoring does).
    2. Seed a mask at WORK_SIDE px on the long side:
         sure foreground        the inner face and a strip of chest below the chin
         probable foreground    a head-and-shoulders shape around the face box (hair, neck, shoulders)
         sure background        the image's border band and, outside the head-and-shoulders shape,
                                every pixel within NEAR_COLOUR_DELTA_E of the backdrop colour (the
                                prompt asked for it, so the background is usually near it)
         probable background    everything else, and the near-colour pixels inside the shape
    3. GrabCut decides every probable pixel (at most GRABCUT_ITERATIONS, fewer once the mask settles);
       keep the foreground connected to the face; fill small holes in it.
    4. Scale the mask up to the image, then feather inward only: opacity rises from 0 at the
       boundary to 1 over FEATHER_FRACTION of the short side, so hair and shoulders blend in while
       every background pixel stays exactly the colour.

No plausible face (e.g. the tiny demo model's noise, or a face turned away): the face is assumed
where the studio frames one (DEFAULT_FACE_BOX) and GrabCut is skipped, since its colour models
have nothing reliable to start from, and on noise it takes many times longer than on a photo
(`bench/bench_backdrop.py --noise-grabcut`).
The person is then the seeds' head-and-shoulders shape less its near-colour pixels, and the border
outside that shape is exactly the colour all the same. `Backdrop.face_found` says which it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from faces.face_model import detect_faces

WORK_SIDE = 320  # px, long side GrabCut runs at: ~0.1 s on one core; its colour models need no more
GRABCUT_ITERATIONS = 4  # at most; the mask settles after 2-3 on headshots
SETTLED_FRACTION = 0.001  # an iteration that changes fewer pixels than this share of the image is the last
GRABCUT_SEED = 0x5EED  # GrabCut starts its colour models with k-means++ from OpenCV's thread-local RNG
BORDER_FRACTION = 0.02  # of the short side: the border band that is always background (except under the body)
FEATHER_FRACTION = 0.006  # of the short side: the inward soft edge (~6 px at 1024 px)
NEAR_COLOUR_DELTA_E = 10.0  # CIE76 distance in Lab under which a pixel "is" the backdrop colour (JND ~2.3)
HOLE_FRACTION = 0.002  # enclosed background smaller than this share of the image is filled (GrabCut speckle)
FACE_THRESHOLD = 0.0  # dlib HOG score: low, as in scoring (pipeline/score.py): we look for the face we asked for
MIN_FACE_FRACTION = 0.06  # a face narrower than this share of the image width is taken as no face (a false hit)
# Where the studio frames a face when none is found: (left, top, right, bottom) as fractions of width and height.
DEFAULT_FACE_BOX = (0.37, 0.25, 0.63, 0.50)
MIN_SEED_PIXELS = 50  # per side, for GrabCut's colour models (5 components each)
MIN_SIDE = 32  # px; the smallest size a style may ask for (pipeline/styles.py)
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Backdrop:
    """A headshot with its background replaced, and what the procedure found."""

    image: Image.Image  # RGB, the input's size
    face_found: bool  # False: no GrabCut, the default framing's head-and-shoulders shape (see the module docstring)
    background_fraction: float  # share of pixels set exactly to the colour


def parse_colour(colour: str) -> tuple[int, int, int]:
    """(r, g, b) of a "#rrggbb" colour; ValueError for anything else (team looks are checked before they get here)."""
    if not isinstance(colour, str) or not _HEX.fullmatch(colour):
        raise ValueError("backdrop colour must be written as '#rrggbb'")
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def apply_backdrop(image: Image.Image, colour: str) -> Image.Image:
    """`image` with every background pixel set to exactly `colour` ("#rrggbb"), the same way for everyone."""
    return replace_backdrop(image, colour).image


def replace_backdrop(image: Image.Image, colour: str) -> Backdrop:
    """Find the person in `image` and set every background pixel to exactly `colour`; see the module docstring."""
    rgb = parse_colour(colour)
    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image is smaller than {MIN_SIDE} px on a side")
    box, face_found = _face_box(pixels)
    foreground = _person_mask(pixels, box, rgb, refine=face_found)
    alpha = _feathered(foreground, FEATHER_FRACTION * min(height, width))
    out = pixels.astype(np.float32) * alpha[..., None] + np.float32(rgb) * (1.0 - alpha[..., None])
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    background = alpha == 0.0
    out[background] = rgb  # already exact (0 * pixel + 1 * colour); said outright because it is the promise
    return Backdrop(image=Image.fromarray(out), face_found=face_found,
                    background_fraction=float(background.mean()))


def _face_box(pixels: np.ndarray) -> tuple[tuple[float, float, float, float], bool]:
    """The largest plausible face's box (left, top, right, bottom) in pixels, or the default framing's, and whether
    a face was found."""
    height, width = pixels.shape[:2]
    faces = [f for f in detect_faces(pixels, threshold=FACE_THRESHOLD)
             if f.box[2] - f.box[0] >= MIN_FACE_FRACTION * width]
    if faces:
        return tuple(float(v) for v in faces[0].box), True  # detect_faces lists the largest first
    left, top, right, bottom = DEFAULT_FACE_BOX
    return (left * width, top * height, right * width, bottom * height), False


def _person_mask(pixels: np.ndarray, box: tuple[float, float, float, float], rgb: tuple[int, int, int],
                 *, refine: bool = True) -> np.ndarray:
    """Boolean (H, W) mask of the person at the image's size: the seeds at WORK_SIDE, refined by GrabCut if `refine`."""
    height, width = pixels.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else pixels.copy()
    seeds = _seeds(small, tuple(v * scale for v in box), rgb)
    if refine:
        _grabcut(small, seeds)
    person = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    person = _tidied(person, seeds == cv2.GC_FGD)
    # Bilinear then a threshold at one half: a smooth boundary at full size instead of WORK_SIDE's staircase.
    large = cv2.resize(person.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return large >= 0.5


def _grabcut(small: np.ndarray, seeds: np.ndarray) -> None:
    """Let GrabCut decide the probable pixels of `seeds` (in place), one iteration at a time until the mask settles."""
    person = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    # GrabCut fits a 5-component colour model to each side and refuses to start without samples for both;
    # a face box at the very edge of a small image could leave one side (almost) empty: the seeds decide then.
    if min(person.sum(), (~person).sum()) < MIN_SEED_PIXELS:
        return
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(GRABCUT_SEED)  # thread-local: fixes this call's k-means++ start, nobody else's
    mode = cv2.GC_INIT_WITH_MASK
    for _ in range(GRABCUT_ITERATIONS):  # the colour models carry over from call to call, as in one call
        cv2.grabCut(bgr, seeds, None, background_model, foreground_model, 1, mode)
        mode = cv2.GC_EVAL
        settled, person = person, (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        if np.count_nonzero(settled != person) < SETTLED_FRACTION * person.size:
            break


def _seeds(small: np.ndarray, box: tuple[float, float, float, float], rgb: tuple[int, int, int]) -> np.ndarray:
    """GrabCut's initial mask (GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD) for `small`, the face box in its pixels."""
    height, width = small.shape[:2]
    left, top, right, bottom = box
    face_w, face_h = right - left, bottom - top
    cx = (left + right) / 2

    body = np.zeros((height, width), np.uint8)
    # Head with hair: an ellipse reaching ~0.7 face heights above the box (dlib's box starts at the brows).
    cv2.ellipse(body, (round(cx), round(top + 0.35 * face_h)), (round(0.85 * face_w), round(1.05 * face_h)),
                0, 0, 360, 1, -1)
    # Neck and shoulders: widening from the chin to ~4.4 face widths, then straight down to the bottom edge.
    shoulders_y = bottom + 1.5 * face_h
    torso = np.array([(cx - 0.55 * face_w, bottom - 0.2 * face_h), (cx + 0.55 * face_w, bottom - 0.2 * face_h),
                      (cx + 2.2 * face_w, shoulders_y), (cx + 2.2 * face_w, height + 1),
                      (cx - 2.2 * face_w, height + 1), (cx - 2.2 * face_w, shoulders_y)])
    cv2.fillPoly(body, [np.round(torso).astype(np.int32)], 1)

    core = np.zeros((height, width), np.uint8)
    cv2.ellipse(core, (round(cx), round(top + 0.55 * face_h)), (max(1, round(0.3 * face_w)),
                                                                  max(1, round(0.35 * face_h))), 0, 0, 360, 1, -1)
    chest = np.round([(cx - 0.3 * face_w, bottom + 0.5 * face_h), (cx + 0.3 * face_w, bottom + 1.3 * face_h)])
    cv2.rectangle(core, tuple(int(v) for v in chest[0]), tuple(int(v) for v in chest[1]), 1, -1)

    border = np.ones((height, width), bool)
    band = max(1, round(BORDER_FRACTION * min(height, width)))
    border[band:-band, band:-band] = False

    near = _delta_e(small, rgb) < NEAR_COLOUR_DELTA_E
    seeds = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    seeds[body == 1] = cv2.GC_PR_FGD
    seeds[(body == 1) & near] = cv2.GC_PR_BGD  # a suit may match the backdrop: GrabCut decides there
    seeds[(body == 0) & (border | near)] = cv2.GC_BGD
    seeds[core == 1] = cv2.GC_FGD
    return seeds


def _delta_e(pixels: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """CIE76 colour distance of every pixel of `pixels` (H, W, 3 uint8 RGB) to `rgb`, in Lab."""
    lab = cv2.cvtColor(pixels.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    target = cv2.cvtColor(np.float32([[rgb]]) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
    return np.linalg.norm(lab - target, axis=2)


def _tidied(person: np.ndarray, core: np.ndarray) -> np.ndarray:
    """The person without stray islands (parts not connected to the face and chest) and without small holes."""
    count, labels = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[core & person])
    person = np.isin(labels, keep[keep > 0])
    height, width = person.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~person).astype(np.uint8), connectivity=4)
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        touches_border = x == 0 or y == 0 or x + w == width or y + h == height
        if not touches_border and area < HOLE_FRACTION * height * width:
            person[labels == label] = True
    return person


def _feathered(person: np.ndarray, width_px: float) -> np.ndarray:
    """Opacity (H, W) float32: 0 outside the person, rising to 1 over `width_px` inside its boundary."""
    inside = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 5)  # px to the nearest background pixel
    return np.clip(inside / max(1.0, width_px), 0.0, 1.0).astype(np.float32)
