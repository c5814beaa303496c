"""The Studio photo set's own tools beside the photo check: which of “Remove” and “Replace” can be used."""

from __future__ import annotations

import gradio as gr


def photo_chosen(photo_id: str | None) -> dict:
    """Remove and Replace act on the chosen photo: offered only once one is chosen."""
    chosen = gr.update(interactive=bool(photo_id))
    return {"remove_one": chosen, "replace_one": chosen}
