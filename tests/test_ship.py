"""Shipping: the Space front matter, the Docker image, the start command, and the documents people read.

No Docker engine here: the Dockerfile is parsed and checked instruction by instruction, and
the container's start command (docker-entrypoint.sh) is run as a subprocess with the
image's own ENV values, exactly as the image would run it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

import cli
from privacy.records.notice import RetentionFigures, full_policy, policy_version, short_notice, third_parties
from settings import PRIVACY_ENVIRONMENT, Settings, configuration_reference, env_name, load_settings, setting_fields
from studio import zerogpu

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
ENTRYPOINT = ROOT / "docker-entrypoint.sh"
DEFAULTS = load_settings({})


# --- helpers ---------------------------------------------------------------------------------
def front_matter(text: str) -> tuple[dict, str]:
    """The YAML block Hugging Face reads (between the first two `---` lines) and the rest."""
    match = re.match(r"\A---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with a YAML front matter block"
    return yaml.safe_load(match.group(1)), text[match.end():]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with comments dropped and `\\` continuations joined."""
    instructions, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker too
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE)


def instructions(keyword: str) -> list[str]:
    return [args for kw, args in INSTRUCTIONS if kw == keyword]


def image_env() -> dict[str, str]:
    """The ENV values the running container sees (`KEY=VALUE` pairs; `$VAR` left unexpanded)."""
    env: dict[str, str] = {}
    for args in instructions("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def copy_sources() -> list[str]:
    sources = []
    for args in instructions("COPY"):
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        sources += parts[:-1]  # the last one is the destination
    return sources


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entrypoint_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The image's ENV, with a private data dir and port for this test, and this venv's python first on PATH."""
    env = {k: v for k, v in image_env().items() if k not in ("PATH", "VIRTUAL_ENV")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "HEADSHOT_DATA_DIR": str(tmp_path / "data"),
        "HF_HOME": str(tmp_path / "models"),
        "TMPDIR": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    })
    env.update(extra)
    return env


# --- the Hugging Face Space ------------------------------------------------------------------
def test_readme_front_matter_configures_a_gradio_space():
    meta, _ = front_matter(README)
    gradio_pin = re.search(r"^gradio==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert meta["sdk"] == "gradio"
    assert str(meta["sdk_version"]) == gradio_pin
    assert (ROOT / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    assert meta["python_version"] == "3.11"  # a string: YAML would read 3.10 as 3.1
    colours = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert meta["colorFrom"] in colours and meta["colorTo"] in colours
    assert meta["title"] and meta["emoji"] and meta["license"]
    assert 0 < len(meta["short_description"]) <= 60  # the Hub's limit
    assert isinstance(meta["tags"], list) and "privacy" in meta["tags"]


def test_space_hardware_has_the_24_gb_the_default_sdxl_model_needs():
    meta, _ = front_matter(README)
    assert Settings().base_model == "stabilityai/stable-diffusion-xl-base-1.0"
    # SDXL LoRA training peaks at 12-14 GB with bf16: 24 GB cards with bf16 (or bigger), not a T4.
    assert meta["suggested_hardware"] in {"a10g-large", "a10g-small", "l4x1", "a100-large"}


def test_space_preloads_the_default_base_model_fp16_weights():
    meta, _ = front_matter(README)
    entries = {line.split()[0]: line.split()[1].split(",") for line in meta["preload_from_hub"]}
    files = entries[Settings().base_model]  # the same id the app loads by default
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert f"{component}/config.json" in files
        weights = "model" if component.startswith("text_encoder") else "diffusion_pytorch_model"
        assert f"{component}/{weights}.fp16.safetensors" in files
    for tokenizer in ("tokenizer", "tokenizer_2"):
        assert {f"{tokenizer}/vocab.json", f"{tokenizer}/merges.txt"} <= set(files)
    assert {"model_index.json", "scheduler/scheduler_config.json"} <= set(files)


def test_space_preloads_instant_modes_face_adapter_for_the_default_base_model():
    """Instant mode's weights are in the image at build time too: the default base's plus-face file and its encoder."""
    from pipeline.instant import FACE_ADAPTER_FILES
    meta, _ = front_matter(README)
    entries = {line.split()[0]: line.split()[1].split(",") for line in meta["preload_from_hub"]}
    files = FACE_ADAPTER_FILES["sdxl"]  # the default base model, SDXL 1.0
    assert Settings().face_adapter in entries
    assert {f"{files.subfolder}/{files.weight_name}", f"{files.image_encoder_folder}/config.json",
            f"{files.image_encoder_folder}/model.safetensors"} == set(entries[Settings().face_adapter])


def test_readme_opens_with_the_two_fresh_machine_commands_right_after_the_front_matter():
    _, body = front_matter(README)
    blocks = re.findall(r"```bash\n(.*?)\n```", body, re.S)
    assert blocks[0].endswith(".venv/bin/python app.py")
    assert blocks[1].endswith(".venv/bin/python -m pytest -q")
    assert body.index(blocks[1]) < body.index("\n## ")  # nothing but the title and the commands before them
    ci_last_line = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_last_line == blocks[1]


def test_readme_has_the_sections_each_kind_of_user_needs():
    _, body = front_matter(README)
    headings = re.findall(r"^## (.+)$", body, re.M)
    for section in ("Hugging Face Space", "For researchers", "Self-hosting with Docker", "Configuration"):
        assert section in headings
    assert "docs/CONFIGURATION.md" in body and "load_lora_weights" in body and "bench/bench_train.py" in body
    assert "--gpus all" in body and "--tmpfs /tmp" in body and "HEADSHOT_MASTER_KEY" in body
    assert "postgresql+psycopg://" in body


# --- the Docker image ------------------------------------------------------------------------
def test_image_builds_from_slim_python_311():
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", instructions("FROM")[0])


def test_image_runs_as_non_root_uid_1000():
    users = instructions("USER")
    assert users and users[-1] in ("1000", "1000:1000")
    assert any("--uid 1000" in run for run in instructions("RUN"))
    keywords = [kw for kw, _ in INSTRUCTIONS]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_image_exposes_the_gradio_port_and_listens_on_all_interfaces():
    assert instructions("EXPOSE") == ["7860"]
    env = image_env()
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env["GRADIO_SERVER_PORT"] == "7860"


def test_healthcheck_asks_the_cheap_health_endpoint_with_python_not_curl():
    (check,) = instructions("HEALTHCHECK")
    assert "CMD python" in check and "urllib.request" in check and "curl" not in check
    assert "http://127.0.0.1:%s/healthz" in check and "'7860'" in check


def test_image_adds_nothing_and_copies_no_secret_or_user_data():
    assert instructions("ADD") == []
    secret = re.compile(r"(^|/)(\.env|data|keys?|secrets?|\.git|\.venv|tests)(/|$)|\.(key|pem|p12|db|sqlite)$")
    for source in copy_sources():
        assert source not in (".", "./", "*"), "copy named files, not the whole build context"
        assert not secret.search(source.rstrip("/")), source
        assert (ROOT / source).exists(), f"COPY of a missing path: {source}"


def test_image_copies_every_local_module_the_app_imports():
    copied = {s.rstrip("/") for s in copy_sources()}
    local = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists() or p.name in ("pipeline", "privacy"))}
    files = [ROOT / "app.py"] + [p for d in ("pipeline", "privacy", "web") for p in (ROOT / d).glob("*.py")]
    needed = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            needed |= {n.split(".")[0] for n in names} & local
    for module in needed:
        assert module in copied or f"{module}.py" in copied, f"the image lacks {module}"


def test_data_directory_is_a_volume_owned_by_the_app_user():
    assert image_env()["HEADSHOT_DATA_DIR"] == "/data"
    volumes = [v for args in instructions("VOLUME") for v in json.loads(args)]
    assert "/data" in volumes
    assert any("chown 1000:1000 /data" in run for run in instructions("RUN"))


def test_temp_files_go_to_tmp_for_a_tmpfs():
    assert image_env()["TMPDIR"] == "/tmp"
    assert "--tmpfs /tmp" in DOCKERFILE and "--tmpfs /tmp" in README


def test_image_installs_pinned_requirements_and_a_cuda_torch_without_local_wheels():
    assert any(a.startswith("TORCH_INDEX_URL=https://download.pytorch.org/whl/cu") for a in instructions("ARG"))
    install = " ".join(instructions("RUN"))
    assert "--index-url \"$TORCH_INDEX_URL\"" in install and "^torch==' requirements.txt" in install
    assert "-r requirements.txt" in install and "--no-deps -r requirements-nodeps.txt" in install
    assert "/opt/wheels" not in DOCKERFILE


def test_image_keeps_telemetry_off():
    env = image_env()
    for key, value in PRIVACY_ENVIRONMENT.items():
        assert env[key] == value


def test_entrypoint_is_the_start_script():
    assert instructions("ENTRYPOINT") == ['["/app/docker-entrypoint.sh"]']
    assert "docker-entrypoint.sh" in copy_sources()
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().rstrip().endswith('exec python app.py "$@"')


# --- the container's start command -----------------------------------------------------------
def test_container_start_command_serves_healthz(tmp_path):
    port = free_port()
    env = entrypoint_env(tmp_path, GRADIO_SERVER_PORT=str(port), HEADSHOT_BASE_MODEL="tiny-sd")
    proc = subprocess.Popen([str(ENTRYPOINT)], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    status = response.status
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        if status is None:
            proc.kill()
            pytest.fail(f"no answer from /healthz (exit {proc.poll()}): {proc.stderr.read().decode()[-2000:]}")
        assert status == 200
        assert (tmp_path / "data").is_dir()  # the app wrote its private data root where the image says
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.parametrize("name,value,expected", [
    ("HEADSHOT_UPLOAD_RETENTION_HOURS", "forever", "HEADSHOT_UPLOAD_RETENTION_HOURS='forever' is not a number"),
    ("HEADSHOT_UPLOAD_RETENTON_HOURS", "2", "Unknown setting HEADSHOT_UPLOAD_RETENTON_HOURS"),
    ("HEADSHOT_CONTACT_EMAIL", "nobody", "HEADSHOT_CONTACT_EMAIL='nobody' is not an e-mail address"),
])
def test_bad_setting_stops_the_start_command_with_status_2_and_names_it(tmp_path, name, value, expected):
    result = subprocess.run([str(ENTRYPOINT)], cwd=tmp_path, env=entrypoint_env(tmp_path, **{name: value}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Configuration error" in result.stderr and expected in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was created


def test_unwritable_data_directory_stops_the_start_command_with_status_2(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    env = entrypoint_env(tmp_path, HEADSHOT_DATA_DIR=str(tmp_path / "a-file" / "data"))
    result = subprocess.run([str(ENTRYPOINT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "HEADSHOT_DATA_DIR" in result.stderr and "is not writable" in result.stderr


# --- the documents ---------------------------------------------------------------------------
def test_configuration_reference_is_generated_from_the_settings_module():
    text = (ROOT / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    assert text == cli.configuration_doc(), "stale: run `python cli.py docs`"
    assert configuration_reference() in text
    for name in ("HEADSHOT_MASTER_KEY", "HEADSHOT_DATABASE_URL", "HEADSHOT_UPLOAD_RETENTION_HOURS",
                 "HEADSHOT_HEADSHOT_RETENTION_DAYS", "HEADSHOT_CONTACT_EMAIL"):
        assert f"`{name}`" in text
    for f in setting_fields():
        assert f"`{env_name(f.name)}`" in text


def test_privacy_md_is_the_policy_of_the_default_configuration():
    text = (ROOT / "PRIVACY.md").read_text(encoding="utf-8")
    assert text == full_policy(DEFAULTS), "stale: run `python cli.py docs`"
    assert f"`{policy_version(DEFAULTS)}`" in text


def test_privacy_md_and_the_in_app_notice_state_the_same_numbers_and_contact():
    text, notice = (ROOT / "PRIVACY.md").read_text(encoding="utf-8"), short_notice(DEFAULTS)
    figures = RetentionFigures.from_settings(DEFAULTS)
    for figure in (figures.uploads, figures.hard_cap, figures.headshots):
        assert f"**{figure}**" in notice and figure in text
    assert (figures.uploads, figures.hard_cap, figures.headshots) == ("1 hour", "24 hours", "7 days")
    assert DEFAULTS.contact_email in notice and DEFAULTS.contact_email in text
    assert third_parties(DEFAULTS) in notice and third_parties(DEFAULTS) in text


# Each question of ../shared/PROMISES.md, the heading of PRIVACY.md that answers it, and words
# the answer must contain (numbers come from the default settings).
PROMISE_ANSWERS = {
    "What is my photo used for?": ("What is my photo used for?", ["only", "your own headshots"]),
    "Is it used to train other models?": ("Is it used to train other models?", ["Never", "no telemetry"]),
    "How long are uploads kept?": ("How long are uploads kept?", ["1 hour", "24 hours"]),
    "Is the trained model (my face) deleted too?": ("Is the trained model (my face) deleted too?", ["Yes"]),
    "Can I delete early?": ("Can I delete early?", ["Delete everything now", "receipt"]),
    "Does deletion reach copies and backups?": ("Does deletion reach copies and backups?", ["keys", "backup"]),
    "What remains after cleanup?": ("What remains after cleanup?", ["7 days", "erasure record", "90 days"]),
    "Are results public?": ("Are results public?", ["private"]),
    "Which third parties touch my photos?": ("Which third parties touch my photos?", ["None", "self-hosted"]),
    "Is it encrypted?": ("Is it encrypted?", ["AES-256-GCM", "per-session key", "HTTPS"]),
    "Who can I contact?": ("Who can I contact?", ["privacy@example.org"]),
    "Is my location leaked?": ("Is my location leaked?", ["GPS", "metadata"]),
    "Could someone upload photos of another person?": ("Could someone upload photos of another person?",
                                                        ["exactly one face", "same person", "18"]),
    "What about others in the frame, children, documents?": (
        "What about other people in the frame, children, documents?", ["second face", "children", "documents"]),
    "Will it still look like me?": ("Will it still look like me?", ["likeness", "held back"]),
    "Can it be used for deepfakes?": ("Can it be used for deepfakes?", ["no free-text prompt", "C2PA", "watermark"]),
    "Who owns the result?": ("Who owns the result?", ["You do", "ZIP"]),
    "Is there a written retention policy before collection?": (
        "Is there a written retention policy before collection?", ["before you give consent", "consent record"]),
    "Is there an audit trail?": ("Is there an audit trail?", ["without personal data"]),
    "What if the service crashes?": ("What if the service crashes?", ["as soon as it starts again"]),
}


def test_privacy_md_answers_every_question_of_the_promises():
    assert len(PROMISE_ANSWERS) == 20  # one per row of the promises table
    text = (ROOT / "PRIVACY.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for question, (heading, words) in PROMISE_ANSWERS.items():
        assert heading in sections, f"PRIVACY.md does not answer: {question}"
        for word in words:
            assert word.lower() in sections[heading].lower(), f"{question!r}: the answer lacks {word!r}"


# --- ZeroGPU ---------------------------------------------------------------------------------
def test_gpu_decorator_is_a_no_op_off_zerogpu_and_never_imports_spaces():
    code = ("import sys\nfrom studio import zerogpu\n"
            "def job(n):\n    return n * 2\n"
            "assert zerogpu.gpu({}, duration=lambda n: 60)(job) is job\n"
            "assert zerogpu.enable({'SPACES_ZERO_GPU': 'false'}) is False\n"
            "assert job(21) == 42\n"
            "assert 'spaces' not in sys.modules, 'importing spaces patches torch'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value,expected", [("true", True), ("True", True), ("1", True), ("t", True),
                                            ("false", False), ("0", False), ("", False)])
def test_zerogpu_is_detected_from_the_variable_spaces_itself_reads(value, expected):
    assert zerogpu.on_zero_gpu({"SPACES_ZERO_GPU": value}) is expected


def test_on_zerogpu_the_job_runs_under_spaces_gpu_with_the_planned_duration(monkeypatch):
    requested = {}

    class FakeSpaces:  # stands in for the `spaces` package, which only works on a real ZeroGPU Space
        @staticmethod
        def GPU(*, duration):
            requested["duration"] = duration
            return lambda fn: ("wrapped", fn)

    monkeypatch.setitem(sys.modules, "spaces", FakeSpaces)

    def job(n_photos: int, n_images: int) -> None:
        pass

    decorated = zerogpu.gpu({"SPACES_ZERO_GPU": "true"},
                            duration=lambda n_photos, n_images: zerogpu.gpu_duration(n_photos, n_images, "sd15"))(job)
    assert decorated == ("wrapped", job)
    assert requested["duration"](4, 4) == zerogpu.gpu_duration(4, 4, "sd15") < zerogpu.MAX_DURATION_S
    assert requested["duration"](20, 16) == zerogpu.MAX_DURATION_S  # ZeroGPU's ceiling, not more


def test_gpu_duration_follows_the_trainers_step_count_and_the_number_of_images():
    from pipeline.train_lora import default_train_config

    steps = default_train_config(6, "sdxl").steps
    expected = (zerogpu.FIXED_SECONDS["sdxl"] + steps * zerogpu.SECONDS_PER_TRAIN_STEP["sdxl"]
                + 8 * zerogpu.SECONDS_PER_IMAGE["sdxl"]) * zerogpu.SAFETY_FACTOR
    assert zerogpu.gpu_duration(6, 8, "sdxl") == pytest.approx(expected, abs=1)
    assert zerogpu.gpu_duration(10, 8, "sdxl") > zerogpu.gpu_duration(6, 8, "sdxl") > zerogpu.gpu_duration(6, 4, "sdxl")
    assert zerogpu.gpu_duration(6, 8, "sdxl") > zerogpu.gpu_duration(6, 8, "sd15")
    assert zerogpu.gpu_duration(6, 8, "sdxl", train_steps=100) < zerogpu.gpu_duration(6, 8, "sdxl")
    with pytest.raises(ValueError):
        zerogpu.gpu_duration(4, 4, "flux")


def test_zerogpu_startup_runs_spaces_startup_only_on_zerogpu(monkeypatch):
    calls = []
    fake_zero = type(sys)("spaces.zero")
    fake_zero.startup = lambda: calls.append("startup")
    monkeypatch.setitem(sys.modules, "spaces", type(sys)("spaces"))
    monkeypatch.setitem(sys.modules, "spaces.zero", fake_zero)
    zerogpu.startup({})
    assert calls == []
    zerogpu.startup({"SPACES_ZERO_GPU": "true"})
    assert calls == ["startup"]


def test_instant_mode_fits_one_default_zerogpu_call_and_the_page_knows_how_many_images_do():
    for family in ("sdxl", "sd15"):
        most = zerogpu.instant_images_within(zerogpu.ZERO_GPU_DEFAULT_DURATION_S, family)
        assert most >= 1
        assert zerogpu.instant_gpu_duration(most, family) <= zerogpu.ZERO_GPU_DEFAULT_DURATION_S
        assert zerogpu.instant_gpu_duration(most + 1, family) > zerogpu.ZERO_GPU_DEFAULT_DURATION_S
    # No training: far below a Studio run of the same images.
    assert zerogpu.instant_gpu_duration(4, "sdxl") < zerogpu.gpu_duration(4, 4, "sdxl") / 5
    with pytest.raises(ValueError):
        zerogpu.instant_gpu_duration(4, "sd2")  # no plus-face adapter for SD 2.x


@pytest.mark.parametrize("environ, zero_gpu, mode", [
    ({}, False, "studio"),
    ({"SPACES_ZERO_GPU": "true"}, True, "instant"),
    ({"SPACES_ZERO_GPU": "true", "HEADSHOT_DEFAULT_MODE": "studio"}, True, "studio"),
    ({"HEADSHOT_DEFAULT_MODE": "instant"}, False, "instant"),
])
def test_a_zerogpu_space_offers_instant_mode_first_unless_told_otherwise(environ, zero_gpu, mode):
    settings = load_settings(environ)
    assert (settings.zero_gpu, settings.default_mode) == (zero_gpu, mode)


def test_an_unknown_mode_is_refused_at_start_up_by_name():
    from settings import SettingsError
    with pytest.raises(SettingsError, match="HEADSHOT_DEFAULT_MODE='fast' is not one of studio, instant"):
        load_settings({"HEADSHOT_DEFAULT_MODE": "fast"})
