"""Start-up refuses settings that cannot work here in words: exit 2 and one sentence naming the variable.

`python app.py` and the container's start command (docker-entrypoint.sh → startup_checks.py) make the same
checks before serving: a malformed master key, a database that cannot be reached, a data directory that
cannot be written, a face-adapter directory without the adapter. Never a traceback, never a secret echoed.
"""

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from settings import SettingsError, load_settings
from startup_checks import check_before_serving, check_face_adapter, check_sface_model

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "docker-entrypoint.sh"


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    env.update({"HEADSHOT_DATA_DIR": str(tmp_path / "data"), "HEADSHOT_BASE_MODEL": "tiny-sd", "HF_HUB_OFFLINE": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    env.update({f"HEADSHOT_{k.upper()}": v for k, v in settings.items()})
    return env


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def refused(command: list[str], tmp_path: Path, **settings: str) -> str:
    """Run `command` with these settings; it must exit 2 with one sentence on stderr and no traceback."""
    result = subprocess.run(command, cwd=tmp_path, env=environment(tmp_path, **settings), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1 and lines[0].startswith("Configuration error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return lines[0]


APP = [sys.executable, str(ROOT / "app.py")]
START = [str(ENTRYPOINT)]
BAD_KEY = base64.b64encode(b"thirty-one bytes, not thirty-2").decode()


@pytest.mark.parametrize("command", [APP, START], ids=["python app.py", "container start"])
def test_a_malformed_master_key_stops_start_up_with_status_2_and_names_the_variable(command, tmp_path):
    message = refused(command, tmp_path, master_key=BAD_KEY)
    assert "HEADSHOT_MASTER_KEY must be 32 random bytes" in message and BAD_KEY not in message


@pytest.mark.parametrize("command", [APP, START], ids=["python app.py", "container start"])
def test_an_unreachable_database_stops_start_up_with_status_2_and_no_password(command, tmp_path):
    port = closed_port()
    message = refused(command, tmp_path, database_url=f"postgresql+psycopg://studio:hunter2@127.0.0.1:{port}/studio")
    assert "HEADSHOT_DATABASE_URL" in message and f"127.0.0.1:{port}/studio cannot be reached" in message
    assert "hunter2" not in message and "studio:" not in message


def test_an_unwritable_data_directory_stops_python_app_py_with_status_2(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    message = refused(APP, tmp_path, data_dir=str(tmp_path / "a-file" / "data"))
    assert "HEADSHOT_DATA_DIR" in message and "is not writable" in message


def test_a_face_adapter_directory_without_the_adapter_stops_start_up(tmp_path):
    (tmp_path / "adapter" / "models").mkdir(parents=True)
    message = refused(APP, tmp_path, face_adapter=str(tmp_path / "adapter"))
    assert "HEADSHOT_FACE_ADAPTER" in message and "image_encoder" in message or "safetensors" in message


def test_face_adapter_checks_accept_what_can_serve_and_refuse_what_cannot(tmp_path):
    check_face_adapter("h94/IP-Adapter", "stabilityai/stable-diffusion-xl-base-1.0")  # a hub id: checked at load
    check_face_adapter("tiny-ip-adapter", "tiny-sdxl")
    with pytest.raises(SettingsError, match="serves only the demo base models"):
        check_face_adapter("tiny-ip-adapter", "stabilityai/stable-diffusion-xl-base-1.0")
    adapter = tmp_path / "ip"
    for needed in ("sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors", "models/image_encoder/config.json"):
        (adapter / needed).parent.mkdir(parents=True, exist_ok=True)
        (adapter / needed).write_bytes(b"{}")
    check_face_adapter(str(adapter), "my/sdxl")  # the SDXL adapter alone is enough
    with pytest.raises(SettingsError, match="is not a directory"):
        check_face_adapter(str(tmp_path / "nowhere"), "my/sdxl")


def test_a_second_face_encoder_file_must_be_there_and_be_sface(tmp_path):
    from tests.pipeline.helpers import save_tiny_sface
    check_sface_model(Path(""))  # none named: dlib ranks alone
    check_sface_model(save_tiny_sface(tmp_path / "sface.onnx"))  # SFace's input and output: loads
    with pytest.raises(SettingsError, match="HEADSHOT_SFACE_MODEL=.* is not a file"):
        check_sface_model(tmp_path / "missing.onnx")
    (tmp_path / "bogus.onnx").write_bytes(b"not onnx")
    with pytest.raises(SettingsError, match="HEADSHOT_SFACE_MODEL"):
        check_sface_model(tmp_path / "bogus.onnx")


def test_good_settings_pass_every_check_and_leave_a_private_data_dir(tmp_path):
    check_before_serving(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path / "data"), "HEADSHOT_BASE_MODEL": "tiny-sd"}))
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data" / "keys" / "master.key").stat().st_size == 32
    assert not (tmp_path / "data" / ".write-probe").exists()
