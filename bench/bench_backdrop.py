"""Benchmark a team's exact backdrop (pipeline/backdrop.py) on 1024x1024 headshots, against one PIL resize.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_backdrop.py [--repeats 5] [--side 1024]

Images: the face fixtures cropped square around the face, once with their own rooms as the background to
replace (a hard case: textured, far from the colour) and once on a gradient near the colour (what a model asked
for it paints: the usual case), and one of noise (no face: the default framing, no GrabCut). Each is timed
whole (`replace_backdrop`) and by stage: face detection, the mask (GrabCut), the feathered blend. The reference,
measured in the same run on the same image, is one PIL resize to half the side (LANCZOS), so the ratio says how
the step compares whatever the CPU.
The step runs on the GPU line once per image of a team style, after the image leaves the pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faces.face_model import detect_faces  # noqa: E402
from pipeline import backdrop  # noqa: E402

FACES = ROOT / "tests" / "fixtures" / "faces"
PHOTOS = ("biden_2.jpg", "obama_1.jpg", "biden_1.jpg", "obama_4.jpg")
COLOUR = "#1f2a44"


def headshot(name: str, side: int) -> Image.Image:
    """A fixture photo cropped to a square around its face, framed roughly as a headshot, at `side` px."""
    photo = Image.open(FACES / name).convert("RGB")
    left, top, right, bottom = detect_faces(np.asarray(photo), threshold=0.5)[0].box
    half = min(2.0 * (right - left), photo.width / 2, photo.height / 2)
    cx, cy = (left + right) / 2, (top + bottom) / 2 + 0.5 * (bottom - top)
    cx, cy = min(max(cx, half), photo.width - half), min(max(cy, half), photo.height - half)
    square = photo.crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    return square.resize((side, side), Image.Resampling.LANCZOS)


def on_studio_backdrop(image: Image.Image) -> Image.Image:
    """The same person on what a model asked for COLOUR paints: a gradient near it with a little noise. The person
    is what the backdrop step itself finds; the rest is replaced."""
    result = np.asarray(backdrop.apply_backdrop(image, COLOUR))
    side = result.shape[0]
    shade = np.linspace(-15, 15, side, dtype=np.float32)[:, None, None]
    noise = np.random.default_rng(1).normal(0, 3, result.shape)
    studio = np.clip(np.float32(backdrop.parse_colour(COLOUR)) + shade + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(np.where((result == backdrop.parse_colour(COLOUR)).all(axis=2)[..., None], studio, result))


def median_ms(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(name: str, image: Image.Image, repeats: int) -> dict:
    pixels = np.asarray(image)
    rgb = backdrop.parse_colour(COLOUR)
    side = image.width
    result = backdrop.replace_backdrop(image, COLOUR)  # warm: dlib loads its models on first use
    box, found = backdrop._face_box(pixels)
    person = backdrop._person_mask(pixels, box, rgb, refine=found)
    row = {
        "image": name,
        "face_found": result.face_found,
        "background": round(result.background_fraction, 3),
        "resize_ms": median_ms(lambda: image.resize((side // 2, side // 2), Image.Resampling.LANCZOS), repeats),
        "total_ms": median_ms(lambda: backdrop.replace_backdrop(image, COLOUR), repeats),
        "detect_ms": median_ms(lambda: backdrop._face_box(pixels), repeats),
        "mask_ms": median_ms(lambda: backdrop._person_mask(pixels, box, rgb, refine=found), repeats),
        "feather_ms": median_ms(lambda: backdrop._feathered(person, backdrop.FEATHER_FRACTION * side), repeats),
    }
    row["x_resize"] = row["total_ms"] / row["resize_ms"]
    return row


def grabcut_on_noise_ms(side: int) -> float:
    """What the no-face rule saves: GrabCut forced onto noise with the default framing's seeds (one run)."""
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    left, top, right, bottom = backdrop.DEFAULT_FACE_BOX
    box = (left * side, top * side, right * side, bottom * side)
    return median_ms(lambda: backdrop._person_mask(noise, box, backdrop.parse_colour(COLOUR), refine=True), 1)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--photos", nargs="*", default=list(PHOTOS))
    parser.add_argument("--noise-grabcut", action="store_true", help="also time GrabCut forced onto noise (slow)")
    args = parser.parse_args(argv)
    images = [(name, headshot(name, args.side)) for name in args.photos]
    images += [(f"{name} studio", on_studio_backdrop(image)) for name, image in images]
    noise = np.random.default_rng(0).integers(0, 256, (args.side, args.side, 3), dtype=np.uint8)
    images.append(("noise (no face)", Image.fromarray(noise)))
    rows = [measure(name, image, args.repeats) for name, image in images]
    print(f"backdrop {COLOUR} on {args.side}x{args.side}, median of {args.repeats}; working side "
          f"{backdrop.WORK_SIDE} px, {backdrop.GRABCUT_ITERATIONS} GrabCut iterations")
    print(f"{'image':<22}{'face':>6}{'bg':>7}{'total ms':>10}{'detect':>8}{'mask':>8}{'feather':>9}"
          f"{'resize ms':>11}{'x resize':>10}")
    for r in rows:
        print(f"{r['image']:<22}{str(r['face_found']):>6}{r['background']:>7.3f}{r['total_ms']:>10.0f}"
              f"{r['detect_ms']:>8.0f}{r['mask_ms']:>8.0f}{r['feather_ms']:>9.1f}{r['resize_ms']:>11.1f}"
              f"{r['x_resize']:>10.1f}")
    if args.noise_grabcut:
        faces = [r["mask_ms"] for r in rows if r["face_found"]]
        forced = grabcut_on_noise_ms(args.side)
        print(f"GrabCut forced onto noise: {forced:.0f} ms, {forced / statistics.median(faces):.0f}x the median "
              "mask of a photo with a face (why no face means no GrabCut)")
    return rows


if __name__ == "__main__":
    main()
