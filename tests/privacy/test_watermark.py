"""The invisible watermark: a CRC-checked payload that survives re-encoding and is never read into unmarked images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from privacy.marks import watermark
from privacy.marks.watermark import WatermarkPayload

PAYLOAD = WatermarkPayload(demo=True)


def synthetic_image(seed: int, size: int = 512) -> np.ndarray:
    """Gradient + noise + a disc: smooth areas, texture and saturated edges in one image."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size)
    img = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (size, 1)), np.tile(ramp[::-1, None], (1, size))], -1)
    img = img + rng.normal(0, 10, img.shape)
    yy, xx = np.mgrid[:size, :size]
    img[(yy - size * 0.6) ** 2 + (xx - size * 0.4) ** 2 < (size * 0.2) ** 2] = rng.integers(0, 256, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)  # Pillow's default 4:2:0 chroma: the harsh case
    return np.asarray(Image.open(buffer).convert("RGB"))


def resized_and_back(rgb: np.ndarray, factor: float) -> np.ndarray:
    im = Image.fromarray(rgb)
    small = im.resize((int(im.width * factor), int(im.height * factor)), Image.Resampling.BILINEAR)
    return np.asarray(small.resize(im.size, Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def marked() -> np.ndarray:
    return watermark.embed(synthetic_image(1), PAYLOAD)


def test_payload_round_trips_through_its_bits():
    for payload in (WatermarkPayload(), WatermarkPayload(demo=True), WatermarkPayload(generator=200)):
        bits = watermark.payload_bits(payload)
        assert bits.shape == (watermark.PAYLOAD_BITS,)
        assert watermark.parse_bits(bits) == payload


def test_payload_holds_only_version_generator_and_demo_flag():
    # Nothing about the person or the session can be in it: the dataclass has no field for it.
    assert set(WatermarkPayload.__dataclass_fields__) == {"version", "generator", "demo"}
    assert set(PAYLOAD.meaning()) == {"studio_mark", "format_version", "generator", "demo_model"}


def test_any_single_flipped_bit_fails_the_check():
    bits = watermark.payload_bits(PAYLOAD)
    for i in range(len(bits)):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert watermark.parse_bits(flipped) is None, f"bit {i}"


def test_random_bits_do_not_pass_magic_and_crc():
    rng = np.random.default_rng(7)
    passed = sum(watermark.parse_bits(bits) is not None for bits in rng.integers(0, 2, (20_000, 48)))
    assert passed == 0  # expected 20_000 * 2**-32 ~ 5e-6


def test_marked_pixels_carry_the_payload(marked):
    assert watermark.detect(marked, search=False) == PAYLOAD


def test_mark_is_invisible(marked):
    original = synthetic_image(1).astype(np.float64)
    mse = np.mean((marked.astype(np.float64) - original) ** 2)
    assert 10 * np.log10(255**2 / mse) > 40  # PSNR in dB


@pytest.mark.parametrize("quality", [90, 80, 70])
def test_mark_survives_jpeg(marked, quality):
    assert watermark.detect(jpeg(marked, quality)) == PAYLOAD


@pytest.mark.parametrize("factor", [0.75, 0.5])
def test_mark_survives_resizing_down_and_back(marked, factor):
    assert watermark.detect(resized_and_back(marked, factor)) == PAYLOAD


def test_mark_survives_a_ten_percent_crop(marked):
    h, w = marked.shape[:2]
    top, left = int(h * 0.05) + 3, int(w * 0.05) + 1  # deliberately off the 8-pixel grid
    assert watermark.detect(np.ascontiguousarray(marked[top:h - top, left:w - left])) == PAYLOAD


# Unmarked face fixtures: tests/privacy/test_provenance.py verifies every one (watermark and C2PA).


def test_noise_and_flat_images_carry_no_watermark():
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (384, 384, 3), dtype=np.uint8), synthetic_image(5, 384),
              np.full((300, 300, 3), 128, np.uint8), np.zeros((256, 320, 3), np.uint8)]
    for image in images:
        assert watermark.detect(image) is None


def test_images_under_256_px_are_refused_for_marking_and_read_as_unmarked():
    small = synthetic_image(2, 128)
    with pytest.raises(ValueError, match="too small"):
        watermark.embed(small, PAYLOAD)
    assert watermark.detect(small) is None


def test_embedding_does_not_touch_the_input(marked):
    image = synthetic_image(1)
    watermark.embed(image, PAYLOAD)
    assert np.array_equal(image, synthetic_image(1))
