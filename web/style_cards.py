"""The style cards: one card per style with an illustration drawn from its palette, and its background variants.

No Gradio here and no state. The illustration is a drawing made from the style file's colours
(pipeline/styles.py `Palette`), never a generated headshot, and every card says so in visible
text and in the picture's accessible name. Everything from the style file is escaped: it is
operator data, but a file can be edited by mistake or by someone else. The markup needs no
script and no `style=` attribute (a strict Content-Security-Policy blocks inline styles): colours
are SVG presentation attributes, layout is the class rules in STYLE_CARDS_CSS.
"""

from __future__ import annotations

import html
from typing import Any

from pipeline.styles import Style, resolve_style
from privacy.teams.team_look import OUTFITS

ILLUSTRATION_NOTE = "Illustration, not a generated headshot"
_SVG_NS = "http://www.w3.org/2000/svg"
# The key light's centre across the picture (viewBox 0..120 wide), as the viewer sees it.
_LIGHT_X = {"left": 28, "right": 92, "front": 60}
# How bright the highlight is and how far it spreads: soft light is broad and gentle, hard light a
# small bright patch; low-key keeps a narrow patch and darkens the rest (the vignette).
_LIGHT_SHAPE = {"soft": (0.45, 70), "hard": (0.7, 40), "low-key": (0.35, 34)}
_SILHOUETTE_TONE = "#a39e98"  # one neutral grey-beige for every card: the drawing shows no particular person


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def render_style_cards(styles: dict[str, Style]) -> str:
    """One card per style, in the order given: illustration, name, description, background variants."""
    cards = "".join(_card(i, style) for i, style in enumerate(styles.values()))
    return f"<ul class='hs-cards' aria-label='Styles'>{cards}</ul>"


def variant_choices(styles: dict[str, Style]) -> list[tuple[str, str]]:
    """(label, style reference) for every style and each of its variants, in file order: a CheckboxGroup's choices.

    Labels come from `resolve_style`, so the page names a variant exactly as the studio does.
    """
    choices = []
    for style in styles.values():
        for ref in (style.id, *(f"{style.id}:{variant.id}" for variant in style.backgrounds)):
            choices.append((resolve_style(styles, ref).name, ref))
    return choices


def style_choices(styles: dict[str, Style]) -> list[tuple[str, str]]:
    """`variant_choices`, each also in every outfit of the team look's vocabulary ("linkedin_classic:white@blazer"):
    every reference a card can send, named as `resolve_style` names it (the form's CheckboxGroup, the gallery)."""
    choices = []
    for name, ref in variant_choices(styles):
        choices.append((name, ref))
        choices += [(resolve_style(styles, f"{ref}@{outfit}").name, f"{ref}@{outfit}") for outfit in OUTFITS]
    return choices


def look_count(styles: dict[str, Style]) -> int:
    """How many styles one job may ask for: every style and background variant once (an outfit adds none)."""
    return len(variant_choices(styles))


def _outfit_pick(index: int, style: Style) -> str:
    # One outfit per card, for every background picked on it (web/studio.js sends "<ref>@<outfit>"); the first
    # option is the style's own outfit, so a person who never opens it gets the style as drawn.
    options = "".join(f"<option value='{_esc(outfit)}'>{_esc(words)}</option>" for outfit, words in OUTFITS.items())
    return (f"<p class='hs-card-one'><label class='hs-outfit'>Outfit"
            f"<select id='hs-outfit-{index}' class='hs-outfit-pick' data-hs-outfit-of='{_esc(style.id)}'>"
            f"<option value=''>As shown: {_esc(style.outfit)}</option>{options}</select></label></p>")


def _card(index: int, style: Style) -> str:
    # The card is where a style is chosen: a checkbox per variant (web/studio.js keeps them and the form's own
    # CheckboxGroup, hidden, in step), each named in full for a screen reader, as `variant_choices` names it.
    if style.backgrounds:
        swatches = [_swatch(f"hs-pick-{index}-0", style.id, style.name, "Standard", style.palette.backdrop[0])]
        swatches += [_swatch(f"hs-pick-{index}-{k}", f"{style.id}:{variant.id}", f"{style.name} · {variant.name}",
                             variant.name, variant.colour) for k, variant in enumerate(style.backgrounds, start=1)]
        picks = (f"<p class='hs-card-label'>Backgrounds you can choose:</p>"
                 f"<ul class='hs-swatches'>{''.join(swatches)}</ul>")
    else:
        box = _pick_box(f"hs-pick-{index}-0", style.id, style.name)
        picks = f"<p class='hs-card-one'><label class='hs-pick'>{box}<span>Choose this style</span></label></p>"
    return (f"<li class='hs-card' data-style='{_esc(style.id)}'>"
            f"<figure class='hs-card-figure'>{illustration(index, style)}"
            f"<figcaption class='hs-card-note'>{ILLUSTRATION_NOTE}</figcaption></figure>"
            f"<p class='hs-card-name'>{_esc(style.name)}</p>"
            f"<p class='hs-card-desc'>{_esc(style.description)}</p>{picks}{_outfit_pick(index, style)}</li>")


def _pick_box(box_id: str, ref: str, full_name: str) -> str:
    return (f"<input type='checkbox' class='hs-pick-box' id='{_esc(box_id)}' data-hs-choice='{_esc(ref)}' "
            f"aria-label='{_esc(full_name)}'>")


def _swatch(box_id: str, ref: str, full_name: str, name: str, colour: str) -> str:
    # The name is text beside the circle: the colour alone would tell nothing to many people.
    return (f"<li class='hs-swatch'><label class='hs-pick'>{_pick_box(box_id, ref, full_name)}"
            f"<svg xmlns='{_SVG_NS}' class='hs-swatch-dot' viewBox='0 0 14 14' width='14' "
            f"height='14' aria-hidden='true' focusable='false'><circle cx='7' cy='7' r='6' fill='{_esc(colour)}' "
            f"stroke='#6b7078' stroke-width='1'/></svg><span>{_esc(name)}</span></label></li>")


def illustration(index: int, style: Style) -> str:
    """A 4:5 head-and-shoulders drawing on the style's backdrop, lit from its key-light side."""
    palette, light = style.palette, style.palette.light
    uid = f"hs-sc{index}"  # gradient ids must be unique on the page; the index is, whatever the style id holds
    label = f"Illustration of the {style.name} style: {style.background}, {style.outfit}, {style.lighting}"
    defs, backdrop_fill = [], palette.backdrop[0]
    if len(palette.backdrop) > 1:  # a scene or a low-key falloff: top-to-bottom gradient; a plain backdrop is flat
        top, bottom = palette.backdrop[:2]
        defs.append(f"<linearGradient id='{uid}-bg' x1='0' y1='0' x2='0' y2='1'><stop offset='0' "
                    f"stop-color='{_esc(top)}'/><stop offset='1' stop-color='{_esc(bottom)}'/></linearGradient>")
        backdrop_fill = f"url(#{uid}-bg)"
    strength, spread = _LIGHT_SHAPE.get(light.quality, _LIGHT_SHAPE["soft"])
    light_x = _LIGHT_X.get(light.side, _LIGHT_X["front"])
    defs.append(f"<radialGradient id='{uid}-light' cx='{light_x}' cy='60' r='{spread}' gradientUnits='userSpaceOnUse'>"
                f"<stop offset='0' stop-color='#ffffff' stop-opacity='{strength}'/>"
                "<stop offset='1' stop-color='#ffffff' stop-opacity='0'/></radialGradient>")
    head_shade = ""
    if light.side in ("left", "right"):  # the far side of the face falls into shadow
        lit, dark = ("0", "1") if light.side == "left" else ("1", "0")
        depth = "0.4" if light.quality == "low-key" else "0.22"
        defs.append(f"<linearGradient id='{uid}-shade' x1='{lit}' y1='0' x2='{dark}' y2='0'>"
                    "<stop offset='0.35' stop-color='#000000' stop-opacity='0'/>"
                    f"<stop offset='1' stop-color='#000000' stop-opacity='{depth}'/></linearGradient>")
        head_shade = f"<ellipse cx='60' cy='68' rx='20' ry='25' fill='url(#{uid}-shade)'/>"
    vignette = ""
    if light.quality == "low-key":  # most of the picture sinks into darkness around the lit side
        defs.append(f"<radialGradient id='{uid}-vignette' cx='{light_x}' cy='64' r='95' gradientUnits='userSpaceOnUse'>"
                    "<stop offset='0.3' stop-color='#000000' stop-opacity='0'/>"
                    "<stop offset='1' stop-color='#000000' stop-opacity='0.7'/></radialGradient>")
        vignette = f"<rect class='hs-card-vignette' width='120' height='150' fill='url(#{uid}-vignette)'/>"
    return (
        f"<svg xmlns='{_SVG_NS}' class='hs-card-art' viewBox='0 0 120 150' role='img' "
        f"aria-label='{_esc(label)}' focusable='false'><defs>{''.join(defs)}</defs>"
        f"<rect class='hs-card-backdrop' width='120' height='150' fill='{_esc(backdrop_fill)}'/>"
        f"<rect class='hs-card-light' width='120' height='150' fill='url(#{uid}-light)'/>"
        # Shoulders in the outfit colour, the shirt showing at the neck, then neck and head.
        f"<path class='hs-card-outfit' d='M8 150 C10 121 28 110 60 108 C92 110 110 121 112 150 Z' "
        f"fill='{_esc(palette.outfit)}' stroke='#000000' stroke-opacity='0.2' stroke-width='0.8'/>"
        f"<path class='hs-card-shirt' d='M49 108 L60 134 L71 108 Z' fill='{_esc(palette.shirt)}'/>"
        f"<rect x='52' y='86' width='16' height='24' rx='6' fill='{_SILHOUETTE_TONE}'/>"
        f"<ellipse cx='60' cy='68' rx='20' ry='25' fill='{_SILHOUETTE_TONE}'/>"
        f"{head_shade}{vignette}</svg>")


STYLE_CARDS_CSS = """
.hs-cards { list-style: none; margin: 0; padding: 0; display: grid; gap: 12px;
            grid-template-columns: repeat(auto-fill, minmax(min(136px, 100%), 1fr));
            min-width: 0; max-width: 100%; box-sizing: border-box; }
.hs-card { min-width: 0; max-width: 100%; box-sizing: border-box; margin: 0; padding: 8px;
           border: 1px solid #c9ced6; border-radius: 8px; background: #ffffff; color: #1b1f24;
           overflow-wrap: anywhere; }
.hs-card:focus-within { outline: 3px solid #1f3a5f; outline-offset: 2px; }
.hs-card-figure { margin: 0; min-width: 0; }
.hs-card-art { display: block; width: 100%; max-width: 100%; height: auto; border-radius: 6px; }
/* Gradio's prose styles lay paragraphs inline inside an HTML component: each part of a card is a line of its own. */
.hs-card-note, .hs-card-name, .hs-card-desc, .hs-card-label { display: block; }
.hs-card-note { margin: 4px 0 0; font-size: 0.75em; color: #4a5058; }
.hs-card-name { margin: 6px 0 2px; font-weight: 600; line-height: 1.3; }
.hs-card-desc { margin: 0; font-size: 0.9em; line-height: 1.35; }
.hs-card-label { margin: 8px 0 2px; font-size: 0.85em; color: #4a5058; }
.hs-swatches { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 10px;
               min-width: 0; max-width: 100%; }
.hs-swatch { display: inline-flex; align-items: center; gap: 4px; font-size: 0.85em; min-width: 0; max-width: 100%; }
.hs-swatch-dot { flex: none; }
/* Choosing on the card: each pick is a 44 px tap target; a chosen card is outlined. */
.hs-pick { display: inline-flex; align-items: center; gap: 6px; min-height: 44px; min-width: 44px; padding: 0 10px;
           box-sizing: border-box; border: 1px solid #c9ced6; border-radius: 22px; cursor: pointer; }
.hs-pick:has(.hs-pick-box:checked) { border-color: #1f3a5f; background: #eef3f8; font-weight: 600; }
.hs-pick-box { width: 20px; height: 20px; margin: 0; accent-color: #1f3a5f; flex: none; }
.hs-card-figure { cursor: pointer; }
.hs-card:has(.hs-pick-box:checked) { border-color: #1f3a5f; box-shadow: 0 0 0 2px #1f3a5f; }
.hs-card-one { margin: 8px 0 0; }
/* In a team the look is the team's (web.team_handlers hides the form's styles): nothing to pick on the cards. */
body:not(:has(#hs-styles)) .hs-pick, body:not(:has(#hs-styles)) .hs-card-label,
body:not(:has(#hs-styles)) #hs-will-get, body:not(:has(#hs-styles)) .hs-outfit { display: none; }
.hs-outfit { margin: 8px 0 0; display: flex; flex-direction: column; gap: 2px; font-size: 0.85em; }
.hs-outfit-pick { min-height: 44px; max-width: 100%; font: inherit; padding: 0 6px; border: 1px solid #6b7078;
                  border-radius: 6px; background: #ffffff; color: #1b1f24; }
"""
