"""Where Instant mode's face adapter keeps its files (h94/IP-Adapter's layout), importable without torch.

`pipeline.instant` loads the adapter from these paths; `startup_checks` checks a local adapter directory
against them before the app serves, so a wrong HEADSHOT_FACE_ADAPTER fails at start, not at a visitor's Make.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ADAPTER_HINT = ("Set HEADSHOT_FACE_ADAPTER to a local directory laid out like h94/IP-Adapter that holds the "
                "plus-face weights and models/image_encoder, or to tiny-ip-adapter with a tiny base model "
                "(random weights, demo output only).")


@dataclass(frozen=True)
class FaceAdapterFiles:
    subfolder: str  # of the repository, where the adapter's weight file lies
    weight_name: str
    image_encoder_folder: str  # a path from the repository's root (it contains "/"), as load_ip_adapter reads it

    def missing_in(self, directory: Path) -> Path | None:
        """The first file this family's adapter needs that `directory` lacks (None: all there)."""
        for needed in (Path(self.subfolder) / self.weight_name, Path(self.image_encoder_folder) / "config.json"):
            if not (directory / needed).is_file():
                return needed
        return None


# h94/IP-Adapter's files. SDXL's plus-face adapter was trained with the ViT-H encoder of the SD1.5 folder
# ("_vit-h"), not with sdxl_models/image_encoder (ViT-bigG): the same 1280-wide hidden states for both.
FACE_ADAPTER_FILES = {
    "sd15": FaceAdapterFiles("models", "ip-adapter-plus-face_sd15.safetensors", "models/image_encoder"),
    "sdxl": FaceAdapterFiles("sdxl_models", "ip-adapter-plus-face_sdxl_vit-h.safetensors", "models/image_encoder"),
}
