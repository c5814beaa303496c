"""Professional style presets, read and validated from data (assets/styles.json); prompts are built only from them.

There is no free-text prompt (promise 16: no deepfake playground): a person picks
preset ids, and the prompt is the preset's background, outfit and lighting around
the trained trigger token. Sizes are per model family because each family was
trained at its own resolution (SD1.5 ~512 px, SDXL ~1024 px); demo (tiny) models
use their own resolution.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STYLES_PATH = Path(__file__).resolve().parents[1] / "assets" / "styles.json"
MIN_STYLES = 8
FAMILIES = ("sd15", "sdxl", "tiny")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_TEXT_FIELDS = ("name", "description", "background", "outfit", "lighting", "extra", "negative")
_FIELDS = {"id", "sizes", *_TEXT_FIELDS}


class StyleError(ValueError):
    """The style file is malformed (an operator error: raised at start-up)."""


@dataclass(frozen=True)
class Style:
    id: str
    name: str
    description: str
    background: str
    outfit: str
    lighting: str
    extra: str
    negative: str  # this style's own negative prompt; the file's common negatives are appended
    sizes: dict[str, tuple[int, int]]  # family -> (width, height), pixels
    common_negative: str = ""

    def prompt(self, subject: str) -> str:
        """The positive prompt for `subject` (e.g. "ohwx person")."""
        return (f"professional headshot photo of {subject}, {self.outfit}, {self.background}, "
                f"{self.lighting}, {self.extra}, sharp focus, high quality")

    def negative_prompt(self) -> str:
        return ", ".join(p for p in (self.negative, self.common_negative) if p)

    def size_for(self, family: str, is_demo: bool = False, resolution: int = 512) -> tuple[int, int]:
        """(width, height) for `family`; SD 2.x uses the SD1.5 framing scaled to its native `resolution`
        (768 px for 2.x-768, 512 px for 2.x-base), in multiples of 64 (VAE x8, UNet /8)."""
        if is_demo:
            return self.sizes["tiny"]
        if family == "sd2":
            w, h = self.sizes["sd15"]
            return (max(64, round(w * resolution / 512 / 64) * 64), max(64, round(h * resolution / 512 / 64) * 64))
        return self.sizes[family]


def load_styles(path: Path | str = DEFAULT_STYLES_PATH) -> dict[str, Style]:
    """Styles by id, in file order; StyleError names the first problem found."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StyleError(f"style file cannot be read: {type(exc).__name__}") from exc
    return parse_styles(data)


def parse_styles(data: dict) -> dict[str, Style]:
    if not isinstance(data, dict) or not isinstance(data.get("styles"), list):
        raise StyleError("style file needs a 'styles' list")
    common = data.get("common_negative", "")
    if not isinstance(common, str):
        raise StyleError("'common_negative' must be a string")
    styles: dict[str, Style] = {}
    for i, raw in enumerate(data["styles"]):
        style = _parse_one(i, raw, common)
        if style.id in styles:
            raise StyleError(f"style id {style.id!r} appears twice")
        styles[style.id] = style
    if len(styles) < MIN_STYLES:
        raise StyleError(f"{len(styles)} styles found; at least {MIN_STYLES} are required")
    return styles


def _parse_one(i: int, raw: object, common: str) -> Style:
    where = f"style #{i + 1}"
    if not isinstance(raw, dict):
        raise StyleError(f"{where} is not an object")
    unknown = set(raw) - _FIELDS
    missing = _FIELDS - set(raw)
    if unknown or missing:
        raise StyleError(f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
    if not isinstance(raw["id"], str) or not _ID.match(raw["id"]):
        raise StyleError(f"{where}: id must be lower-case letters, digits and '_' (2-40 chars)")
    where = f"style {raw['id']!r}"
    for name in _TEXT_FIELDS:
        value = raw[name]
        if not isinstance(value, str) or (name != "negative" and not value.strip()) or len(value) > 300:
            raise StyleError(f"{where}: {name!r} must be a non-empty string of at most 300 characters")
    sizes = raw["sizes"]
    if not isinstance(sizes, dict) or set(sizes) != set(FAMILIES):
        raise StyleError(f"{where}: sizes must be given for exactly {', '.join(FAMILIES)}")
    parsed: dict[str, tuple[int, int]] = {}
    for family, wh in sizes.items():
        ok = (isinstance(wh, list) and len(wh) == 2 and all(isinstance(v, int) for v in wh)
              and all(32 <= v <= 2048 and v % 8 == 0 for v in wh))
        if not ok:
            # Multiples of 8: the VAE downsamples by 8 (SD) and the UNet halves again.
            raise StyleError(f"{where}: size for {family} must be [width, height], multiples of 8 in 32..2048")
        parsed[family] = (wh[0], wh[1])
    return Style(id=raw["id"], sizes=parsed, common_negative=common,
                 **{name: raw[name].strip() for name in _TEXT_FIELDS})
