"""The house plan, checked: which package may import which, where gradio, the ML and the environment may be
read, and how big a folder or a file may grow. Written once here, so the layout cannot rot silently.

Layers, bottom to top (each may import only those named in RULES):

    errors, settings            the leaves every layer uses; import nothing of the project
    faces                       dlib's face measurements, shared by screening and scoring
    privacy.intake · store      a photo screened in memory · where data rests (vault, database, keys)
    privacy.records · marks     audit log, receipts, notice · C2PA and the watermark
    privacy.teams               a team's look, shares and invites
    privacy.lifecycle           consent, retention, erasure, export, residue: the top of privacy
    pipeline                    the ML alone (takes screened photos, gives images)
    studio                      the application service (Studio, its job line, queue workers, ZeroGPU)
    web.boundary · web          the boundary in front of Gradio · the page, its handlers and markup
    app, cli, startup_checks    wiring and commands (anything below)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("errors.py", "settings.py", "startup_checks.py", "app.py", "cli.py", "faces", "privacy", "pipeline",
           "studio", "web")
PRIVACY_PARTS = ("intake", "store", "records", "marks", "teams", "lifecycle")
BELOW_PRIVACY = {"errors", "settings", "faces"}
ALL_PRIVACY = {f"privacy.{part}" for part in PRIVACY_PARTS} | {"privacy"}

RULES: dict[str, set[str]] = {
    "errors": set(),
    "settings": set(),
    "faces": {"errors", "settings"},
    "privacy": {"errors", "settings"},  # privacy/log_hygiene.py
    "privacy.intake": BELOW_PRIVACY,
    "privacy.store": {"errors", "settings"},
    "privacy.records": {"errors", "settings", "privacy.intake", "privacy.store"},
    "privacy.marks": {"errors", "settings", "privacy.store"},
    "privacy.teams": {"errors", "settings", "privacy.store", "privacy.records"},
    "privacy.lifecycle": BELOW_PRIVACY | ALL_PRIVACY - {"privacy.lifecycle"},
    # The ML takes screened photos in (the type is intake's), and a team look's outfit words (teams).
    "pipeline": BELOW_PRIVACY | {"privacy.intake", "privacy.teams"},
    "studio": BELOW_PRIVACY | ALL_PRIVACY | {"pipeline"},
    # The boundary names the media types the export writes.
    "web.boundary": {"errors", "settings", "privacy.store", "privacy.records", "privacy.lifecycle"},
    "web": BELOW_PRIVACY | ALL_PRIVACY | {"pipeline", "studio", "web.boundary"},
    "startup_checks": BELOW_PRIVACY | ALL_PRIVACY | {"pipeline"},
    "app": BELOW_PRIVACY | ALL_PRIVACY | {"pipeline", "studio", "web", "web.boundary", "startup_checks"},
    "cli": BELOW_PRIVACY | ALL_PRIVACY | {"pipeline", "studio", "web", "web.boundary", "startup_checks"},
}
WEB_LIBRARIES = {"gradio", "gradio_client", "fastapi", "starlette", "uvicorn"}
ML_LIBRARIES = {"torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "spaces"}
# Who may import them (besides app.py and cli.py, which wire everything).
MAY_USE_WEB = {"web", "web.boundary"}
MAY_USE_ML = {"pipeline", "studio"}  # studio: the ZeroGPU wrapper (spaces) and the GPU's free memory
ENVIRONMENT_READERS = {"settings.py", "app.py", "cli.py"}
MAX_MODULES_PER_FOLDER = 15
MAX_FILE_LINES = 650  # a product file stays under it


def layer_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[0] == "privacy" and len(parts) > 2:
        return f"privacy.{parts[1]}"
    if parts[:2] == ("web", "boundary"):
        return "web.boundary"
    return parts[0]


def layer_of_import(module: str) -> str | None:
    """The project layer a dotted import names, or None for a third-party module."""
    parts = module.split(".")
    if parts[0] == "privacy" and len(parts) > 1 and parts[1] in PRIVACY_PARTS:
        return f"privacy.{parts[1]}"
    if parts[:2] == ["web", "boundary"]:
        return "web.boundary"
    return parts[0] if parts[0] in RULES else None


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Every module a file imports when it runs (`if TYPE_CHECKING:` blocks are annotations, not imports)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "putenv"):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                any(alias.name in ("environ", "getenv") for alias in node.names):
            return True
    return False


def product_files(root: Path) -> list[Path]:
    files = []
    for entry in PRODUCT:
        path = root / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py")) if path.is_dir() else []
    return [f for f in files if "__pycache__" not in f.parts]


def violations(root: Path) -> list[str]:
    """Every broken rule of the house plan under `root`, in words (empty when the plan holds)."""
    found = []
    for path in product_files(root):
        where = path.relative_to(root).as_posix()
        layer = layer_of(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for module in _runtime_imports(tree):
            target = layer_of_import(module)
            top = module.split(".")[0]
            if target is not None and target != layer and target not in RULES.get(layer, set()):
                found.append(f"{where}: {layer} may not import {target} ({module})")
            if top in WEB_LIBRARIES and layer not in MAY_USE_WEB | {"app", "cli"}:
                found.append(f"{where}: only the web layer imports {top}")
            if top in ML_LIBRARIES and layer not in MAY_USE_ML | {"app", "cli"}:
                found.append(f"{where}: only pipeline/ and studio/ import {top}")
        if _reads_environment(tree) and where not in ENVIRONMENT_READERS:
            found.append(f"{where}: reads the environment; only settings.py (and app.py, cli.py) may")
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines >= MAX_FILE_LINES:
            found.append(f"{where}: {lines} lines, not under {MAX_FILE_LINES}")
    for folder in {p.parent for p in product_files(root) if p.parent != root}:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if len(modules) > MAX_MODULES_PER_FOLDER:
            found.append(f"{folder.relative_to(root).as_posix()}/: {len(modules)} modules, more than "
                         f"{MAX_MODULES_PER_FOLDER}")
        init = folder / "__init__.py"
        if not init.is_file() or not ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))):
            found.append(f"{folder.relative_to(root).as_posix()}/: no __init__.py saying what it owns")
    return found


def test_the_house_plan_holds():
    assert violations(ROOT) == []


def test_the_layers_form_no_circle():
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in RULES[start])

    assert [layer for layer in RULES if reaches(layer, layer, {layer})] == []


@pytest.mark.parametrize("where,code,broken", [
    ("privacy/store/leak.py", "from pipeline.models import load_base_model\n", "privacy.store may not import pipeline"),
    ("privacy/intake/page.py", "import gradio as gr\n", "only the web layer imports gradio"),
    ("pipeline/web_peek.py", "from web.handlers import StudioHandlers\n", "pipeline may not import web"),
    ("errors.py", "from settings import Settings\n", "errors may not import settings"),
    ("privacy/store/env.py", "import os\nKEY = os.environ['K']\n", "reads the environment"),
    ("privacy/records/teams_up.py", "from privacy.teams.teams import Teams\n",
     "privacy.records may not import privacy.teams"),
    ("faces/torch_faces.py", "import torch\n", "only pipeline/ and studio/ import torch"),
])
def test_each_rule_fails_when_it_is_broken(tmp_path, where, code, broken):
    for package in ("privacy", "privacy/store", "privacy/intake", "privacy/records", "pipeline", "faces"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text('"""Owns something."""\n')
    (tmp_path / where).write_text(code)
    assert any(broken in v for v in violations(tmp_path)), violations(tmp_path)


def test_a_crowded_folder_a_long_file_and_a_silent_package_are_named(tmp_path):
    (tmp_path / "pipeline").mkdir()
    for i in range(MAX_MODULES_PER_FOLDER + 1):
        (tmp_path / "pipeline" / f"m{i}.py").write_text("x = 1\n" * (MAX_FILE_LINES + 1 if i == 0 else 1))
    found = violations(tmp_path)
    assert any("16 modules" in v for v in found) and any("lines, not under" in v for v in found)
    assert any("no __init__.py" in v for v in found)
