"""Professional style presets, read and validated from data (assets/styles.json); prompts are built only from them.

There is no free-text prompt (promise 16: no deepfake playground): a person picks
preset ids, and the prompt is the preset's background, outfit and lighting around
the trained trigger token. Sizes are per model family because each family was
trained at its own resolution (SD1.5 ~512 px, SDXL ~1024 px); demo (tiny) models
use their own resolution.

Each style in the file has these fields (every one required unless marked optional):

    id, name, description        the preset's id (lower-case letters, digits, '_') and how it is shown
    background, outfit, lighting, extra, negative
                                 the prompt's parts; `negative` may be empty
    palette                      the colours its illustration card is drawn from (web/style_cards.py),
                                 never part of the prompt (colours are lower-case "#rrggbb" only):
                                   backdrop  "#rrggbb", or ["#rrggbb", "#rrggbb"]: a top-to-bottom gradient
                                   outfit    "#rrggbb"   shirt  "#rrggbb" (the colour at the neck)
                                   light     {"side": "left"|"right"|"front", "quality": "soft"|"hard"|"low-key"}
                                             (side as the viewer sees the picture)
    backgrounds (optional)       background colour variants a person may choose instead, each
                                   {"id", "name", "colour": "#rrggbb", "prompt"}; `prompt` replaces the
                                   style's `background` text. Styles whose scene is the point (a street,
                                   an office) offer none.
    sizes                        [width, height] per family in FAMILIES

A chosen look travels as a *style reference*, a plain string: "<style_id>" or
"<style_id>:<variant_id>", either followed by "@<outfit_id>" (an id of the team look's checked
vocabulary, privacy.teams.team_look.OUTFITS, whose words replace the style's outfit, as a team's
look does), so that jobs, job records and sealed reports keep carrying strings.
`resolve_style` turns a reference into the Style to render. References come from an API anyone
can call, so it checks their shape before looking anything up and never echoes more than a few
characters of one.

Exceptions:

    StyleError(ValueError)      the style file is malformed (operator error, raised at start-up)
    UnknownStyle(LookupError)   a style reference names no style, or a variant its style lacks
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from privacy.teams.team_look import OUTFITS  # the outfit words a team look may name

DEFAULT_STYLES_PATH = Path(__file__).resolve().parents[1] / "assets" / "styles.json"
MIN_STYLES = 8
FAMILIES = ("sd15", "sdxl", "tiny")
_ID_PATTERN = r"[a-z][a-z0-9_]{1,39}"
# fullmatch, not match with '$': '$' also matches before a trailing newline.
_ID = re.compile(_ID_PATTERN)
_REF = re.compile(rf"({_ID_PATTERN})(?::({_ID_PATTERN}))?(?:@({_ID_PATTERN}))?")
MAX_REF_LENGTH = 122  # three 40-character ids, the ':' and the '@' between them
_UNSAFE_IN_MESSAGE = re.compile(r"[^A-Za-z0-9_.:-]")
_HEX = re.compile(r"#[0-9a-f]{6}")
_TEXT_FIELDS = ("name", "description", "background", "outfit", "lighting", "extra", "negative")
_FIELDS = {"id", "sizes", "palette", *_TEXT_FIELDS}
_OPTIONAL_FIELDS = {"backgrounds"}
_PALETTE_FIELDS = {"backdrop", "outfit", "shirt", "light"}
_LIGHT_FIELDS = {"side", "quality"}
LIGHT_SIDES = ("left", "right", "front")
LIGHT_QUALITIES = ("soft", "hard", "low-key")
_BACKGROUND_FIELDS = {"id", "name", "colour", "prompt"}
MAX_BACKGROUNDS = 8  # per style; each is one more choice on the page
MAX_VARIANT_NAME = 40  # characters; a variant's name is shown beside its style's name


class StyleError(ValueError):
    """The style file is malformed (an operator error: raised at start-up)."""


class UnknownStyle(LookupError):
    """A style reference names no style, or a background variant its style does not offer.

    The message is safe to show: it quotes at most a few characters of the reference.
    """


@dataclass(frozen=True)
class Light:
    side: str  # where the key light falls, as the viewer sees it: one of LIGHT_SIDES
    quality: str  # one of LIGHT_QUALITIES; "low-key" is a mostly dark picture lit from one side


@dataclass(frozen=True)
class Palette:
    """The colours a style's illustration is drawn from; the prompt never uses them."""

    backdrop: tuple[str, ...]  # one "#rrggbb", or two: a gradient from top to bottom
    outfit: str  # "#rrggbb"
    shirt: str  # "#rrggbb", the colour shown at the neck
    light: Light


@dataclass(frozen=True)
class Background:
    """A background colour variant a style offers: `prompt` replaces the style's background text."""

    id: str
    name: str
    colour: str  # "#rrggbb"
    prompt: str


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
    palette: Palette
    common_negative: str = ""
    backgrounds: tuple[Background, ...] = ()  # a resolved variant offers none: it is one of them
    # "#rrggbb" painted behind the person after generation (pipeline/backdrop.py); set by `team_styles` only,
    # so a person's own styles keep the model's backdrop.
    exact_backdrop: str | None = None

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


def resolve_style(styles: dict[str, Style], ref: str) -> Style:
    """The Style a style reference names ("<style_id>" or "<style_id>:<variant_id>"), its variant applied.

    A variant's Style has the full reference as its `id` (so outputs and reports carry it), a name
    such as "LinkedIn classic · Pale blue", the variant's prompt as its `background`, and the
    variant's colour as its backdrop. Raises UnknownStyle for anything else, a malformed reference
    included.
    """
    match = _REF.fullmatch(ref) if isinstance(ref, str) and len(ref) <= MAX_REF_LENGTH else None
    style = styles.get(match.group(1)) if match else None
    if style is None:
        raise UnknownStyle(f"Unknown style {_short(ref)}")
    variant_id, outfit_id = match.group(2), match.group(3)
    if outfit_id is not None and outfit_id not in OUTFITS:
        raise UnknownStyle(f"There is no outfit {_short(outfit_id)}")
    if variant_id is not None:
        variant = next((b for b in style.backgrounds if b.id == variant_id), None)
        if variant is None:
            raise UnknownStyle(f"The style {style.name!r} has no background {variant_id!r}")
        style = replace(style, id=ref, name=f"{style.name} · {variant.name}", background=variant.prompt,
                        palette=replace(style.palette, backdrop=(variant.colour,)), backgrounds=())
    if outfit_id is not None:  # the outfit's words in the prompt, as `team_styles` puts a team's
        style = replace(style, id=ref, name=f"{style.name} · {OUTFITS[outfit_id]}", outfit=OUTFITS[outfit_id],
                        backgrounds=())
    return style


def style_id_of(ref: str) -> str:
    """The style a reference starts from, without its background variant or outfit ("linkedin_classic")."""
    return re.split(r"[:@]", ref, maxsplit=1)[0]


MAX_SD15_SIDE = 768  # SD 1.5 / 2.x repeat or stretch faces far above their training size


def team_styles(styles: dict[str, Style], look: object) -> list[Style]:
    """The Styles a team's look makes: its preset, its exact background colour and its size, once per allowed outfit.

    `look` is a `privacy.teams.team_look.TeamLook` (checked vocabulary only: a preset id, "#rrggbb", outfit ids,
    a size), so no free text reaches the prompt. Every Style keeps the preset's id, so a member's headshots and the
    team's shares name the preset; everyone in the team gets the same prompt, colour and size for the same outfit.
    The colour is asked for in the prompt and then made exact: `exact_backdrop` has generation paint every
    background pixel with it (pipeline/backdrop.py), by the same procedure for every member.
    """
    style = styles.get(getattr(look, "style_id", None))
    if style is None:
        raise UnknownStyle(f"Unknown style {_short(getattr(look, 'style_id', None))}")
    colour, side = look.background, int(look.size)
    sizes = {**style.sizes, "sdxl": (side, side), "sd15": (min(side, MAX_SD15_SIDE),) * 2}
    return [replace(style, name=f"{style.name} · {OUTFITS[outfit]}", outfit=OUTFITS[outfit],
                    background=f"plain seamless studio backdrop in the exact colour {colour}", sizes=sizes,
                    palette=replace(style.palette, backdrop=(colour,)), backgrounds=(), exact_backdrop=colour)
            for outfit in look.outfits if outfit in OUTFITS]


def _short(ref: object) -> str:
    """A reference as an error message may quote it: at most 24 characters, each outside [A-Za-z0-9_.:-] shown as '?'.

    The message may reach a page or a log: no markup, quotes, control characters or long strings.
    """
    if not isinstance(ref, str):
        return f"of type {type(ref).__name__}"
    shown = _UNSAFE_IN_MESSAGE.sub("?", ref[:24])
    return f"'{shown}…'" if len(ref) > 24 else f"'{shown}'"


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
    unknown = set(raw) - _FIELDS - _OPTIONAL_FIELDS
    missing = _FIELDS - set(raw)
    if unknown or missing:
        raise StyleError(f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
    if not isinstance(raw["id"], str) or not _ID.fullmatch(raw["id"]):
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
    return Style(id=raw["id"], sizes=parsed, common_negative=common, palette=_parse_palette(where, raw["palette"]),
                 backgrounds=_parse_backgrounds(where, raw.get("backgrounds", [])),
                 **{name: raw[name].strip() for name in _TEXT_FIELDS})


def _parse_palette(where: str, raw: object) -> Palette:
    where = f"{where}: palette"
    _require_exact_keys(where, raw, _PALETTE_FIELDS)
    backdrop = raw["backdrop"]
    if isinstance(backdrop, str):
        backdrop = [backdrop]
    if not isinstance(backdrop, list) or len(backdrop) not in (1, 2):
        raise StyleError(f"{where}: 'backdrop' must be one colour or a list of two (a gradient)")
    light = raw["light"]
    _require_exact_keys(f"{where}: light", light, _LIGHT_FIELDS)
    if light["side"] not in LIGHT_SIDES:
        raise StyleError(f"{where}: light 'side' must be one of {', '.join(LIGHT_SIDES)}")
    if light["quality"] not in LIGHT_QUALITIES:
        raise StyleError(f"{where}: light 'quality' must be one of {', '.join(LIGHT_QUALITIES)}")
    return Palette(backdrop=tuple(_colour(f"{where}: 'backdrop'", c) for c in backdrop),
                   outfit=_colour(f"{where}: 'outfit'", raw["outfit"]),
                   shirt=_colour(f"{where}: 'shirt'", raw["shirt"]),
                   light=Light(side=light["side"], quality=light["quality"]))


def _parse_backgrounds(where: str, raw: object) -> tuple[Background, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_BACKGROUNDS:
        raise StyleError(f"{where}: 'backgrounds' must be a list of at most {MAX_BACKGROUNDS} variants")
    variants: dict[str, Background] = {}
    for i, item in enumerate(raw):
        at = f"{where}: background #{i + 1}"
        _require_exact_keys(at, item, _BACKGROUND_FIELDS)
        if not isinstance(item["id"], str) or not _ID.fullmatch(item["id"]):
            raise StyleError(f"{at}: id must be lower-case letters, digits and '_' (2-40 chars)")
        at = f"{where}: background {item['id']!r}"
        if item["id"] in variants:
            raise StyleError(f"{at} appears twice")
        name, prompt = item["name"], item["prompt"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_VARIANT_NAME:
            raise StyleError(f"{at}: 'name' must be a non-empty string of at most {MAX_VARIANT_NAME} characters")
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 300:
            raise StyleError(f"{at}: 'prompt' must be a non-empty string of at most 300 characters")
        colour = _colour(f"{at}: 'colour'", item["colour"])
        variants[item["id"]] = Background(id=item["id"], name=name.strip(), colour=colour, prompt=prompt.strip())
    return tuple(variants.values())


def _require_exact_keys(where: str, raw: object, keys: set[str]) -> None:
    if not isinstance(raw, dict):
        raise StyleError(f"{where} must be an object")
    unknown, missing = set(raw) - keys, keys - set(raw)
    if unknown or missing:
        raise StyleError(f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")


def _colour(where: str, value: object) -> str:
    # Only "#rrggbb": the illustration writes colours into SVG attributes, and one strict form
    # leaves no room for names, url(...) or anything else a renderer would interpret.
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise StyleError(f"{where} must be a colour written as '#rrggbb' (lower-case hex)")
    return value
