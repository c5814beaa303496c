"""The guided flow on a phone: photos → style → make → pick, one step open at a time, the others one line each.

On a phone (at most 640 px wide) only the current step's parts are shown; every other step is one tappable line
with its state ("Photos · 4 accepted ✓", "Style · LinkedIn classic, 8 headshots"), and the action bar
(#hs-action-bar, sticky while it has an action) keeps the current step's main action on screen. Which step is
open is the body's `data-hs-step` (consent, photos, style, make, pick), set by web/visitor/flow.js; the rules
below hide by element id, so Gradio re-rendering a component never brings a collapsed part back. Without the
script nothing is hidden: the page is the whole form, as on a desktop, where the flow stays open (a wide screen
shows several steps at once, and a person there scrolls less than they read).

Nothing here changes what is sent or stored: consent, its notice and its record are the page's own controls.
"""

from __future__ import annotations

import html
from pathlib import Path

# Each step: its key, the words of its line, and the page's parts it holds (element ids set in web.page). The
# action bar belongs to no step: the current step's main action is in it.
STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("photos", "Photos", ("hs-step-mode-head", "hs-mode", "hs-zero-gpu-note", "hs-step-photos-head",
                          "hs-instant-area", "hs-photo-area")),
    ("style", "Style", ("hs-step-style-head", "hs-style-cards", "hs-count", "hs-will-get-box")),
    ("make", "Make", ("hs-step-make-head", "hs-status")),
    ("pick", "Pick", ("hs-step-pick-head", "hs-gallery-box")),
)
PHONE = "(max-width: 640px)"  # the width studio.css calls a phone (the sticky action bar); flow.js tests it
ON_PHONE = "body[data-hs-flow=phone][data-hs-step]"


def line_id(key: str) -> str:
    return f"hs-line-{key}-box"


def step_line(key: str) -> str:
    """The one line a collapsed step shows: a button that opens it (its state filled in by flow.js)."""
    words = dict((k, w) for k, w, _ in STEPS)[key]
    return (f"<button type='button' class='hs-step-line' data-hs-goto='{html.escape(key)}' aria-expanded='false'>"
            f"<span data-hs-line-text>{html.escape(words)}</span><span class='hs-step-open' aria-hidden='true'>"
            "Open</span></button>")


def _flow_css() -> str:
    hide = []
    for key, _, parts in STEPS:
        ids = ", ".join(f"#{part}" for part in parts)
        hide.append(f"{ON_PHONE}:not([data-hs-step={key}]) :is({ids}) {{ display: none !important; }}\n"
                    f"{ON_PHONE}[data-hs-step={key}] #{line_id(key)} {{ display: none !important; }}")
    # No @media here: Gradio rewrites every rule inside one under its container's class (gradio's core.js), which
    # no `body` selector survives; flow.js marks the body as a phone's by the same media query instead.
    return (
        "\n/* The guided flow (web.visitor.flow): on a phone one step open, the others one line each. */\n"
        # Gradio also copies each rule under its container's classes, more specific than any `body` rule: the
        # lines are hidden only where the flow is off, never by a plain class rule the copy would make win.
        "body:not([data-hs-flow=phone]) .hs-line-box, body:not([data-hs-step]) .hs-line-box "
        "{ display: none !important; }\n"
        + "\n".join(hide) + "\n"
        ".hs-step-line { display: flex; align-items: center; justify-content: space-between; gap: 8px; width: 100%;\n"
        "  min-height: 48px; padding: 8px 12px; box-sizing: border-box; border: 1px solid #c9ced6;\n"
        "  border-radius: 8px; background: #f6f8fa; color: #1b1f24; font: inherit; font-weight: 600;\n"
        "  text-align: left; cursor: pointer; }\n"
        "#hs-flow-add-bar { position: fixed; left: 0; right: 0; bottom: 0; z-index: 30; padding: 8px 12px;\n"
        "  background: #ffffff; box-shadow: 0 -2px 10px rgba(0, 0, 0, 0.18); }\n"
        "#hs-flow-add { width: 100%; min-height: 48px; border: 0; border-radius: 8px; background: #1f3a5f;\n"
        "  color: #ffffff; font: 600 1.05em system-ui, sans-serif; cursor: pointer; }\n"
        "body.hs-flow-adding { padding-bottom: 72px; }\n"
        ".hs-step-open { flex: none; color: #1f3a5f; text-decoration: underline; font-weight: 400; }\n")


FLOW_CSS = _flow_css()
FLOW_JS = (Path(__file__).resolve().parent / "flow.js").read_text(encoding="utf-8")
