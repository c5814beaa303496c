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


# --- secrets from files: Docker and Kubernetes mount them read-only, owned by the platform -------------------
KEY = os.urandom(32)


def mounted_read_only(source: Path, target: Path, command: list[str]) -> list[str]:
    """`command` run where `target` is `source` bind-mounted read-only, as Docker Compose and Kubernetes mount a
    secret (in a user and mount namespace of its own: no root needed, the host untouched)."""
    script = f'mount --bind "{source}" "{target}" && mount -o remount,bind,ro "{target}" && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", *command]


def can_mount_read_only(tmp_path: Path) -> bool:
    (tmp_path / "probe-src").mkdir()
    (tmp_path / "probe-dst").mkdir()
    try:
        return subprocess.run(mounted_read_only(tmp_path / "probe-src", tmp_path / "probe-dst", ["true"]),
                              capture_output=True, timeout=30).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("content", [KEY, base64.b64encode(KEY) + b"\n"], ids=["raw", "base64 text"])
def test_the_master_key_file_may_be_a_world_readable_secret_on_a_read_only_mount(tmp_path, content):
    if not can_mount_read_only(tmp_path):
        pytest.skip("user and mount namespaces are not available here")
    secrets_dir, mounted = tmp_path / "host-secrets", tmp_path / "run-secrets"
    secrets_dir.mkdir()
    mounted.mkdir()
    (secrets_dir / "master_key").write_bytes(content)
    (secrets_dir / "master_key").chmod(0o444)  # a secret's usual mode: the platform guards who sees the mount
    key_file = mounted / "master_key"
    check = [sys.executable, "-c", "import startup_checks, sys; sys.exit(startup_checks.main())"]
    env = environment(tmp_path, master_key_file=str(key_file))
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(mounted_read_only(secrets_dir, mounted, check), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # The studio reads the same key the secret holds, and left the secret's folder and mode as they were.
    read = [sys.executable, "-c", "from privacy.store.master_key import load_master_key; from pathlib import Path; "
            f"print(load_master_key('', Path({str(key_file)!r})).hex())"]
    result = subprocess.run(mounted_read_only(secrets_dir, mounted, read), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == KEY.hex(), result.stderr[-2000:]
    assert (secrets_dir / "master_key").stat().st_mode & 0o777 == 0o444


def test_a_master_key_secret_owned_by_the_platform_is_read_as_it_is(tmp_path):
    from privacy.store.master_key import load_master_key
    if os.geteuid() != 0:
        pytest.skip("making a file another user owns needs root")
    secret = tmp_path / "run" / "secrets" / "master_key"
    secret.parent.mkdir(parents=True)
    secret.write_text(base64.b64encode(KEY).decode() + "\n")
    os.chown(secret, 4242, 4242)  # Swarm's secrets: another user's file, mode 0444
    secret.chmod(0o444)
    assert load_master_key("", secret) == KEY
    assert secret.parent.stat().st_mode & 0o777 != 0o700  # not the studio's folder: left alone


def test_the_studios_own_key_file_must_still_be_private(tmp_path):
    from privacy.store.master_key import load_master_key
    own = tmp_path / "keys" / "master.key"
    own.parent.mkdir()
    own.write_bytes(KEY)
    own.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_master_key("", own)


def test_a_master_key_file_that_holds_no_key_stops_start_up_in_words(tmp_path):
    bad = tmp_path / "master_key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    message = refused(START, tmp_path, master_key_file=str(bad))
    assert "HEADSHOT_MASTER_KEY_FILE" in message and "neither 32 raw bytes nor their base64 text" in message


def test_the_database_password_comes_from_a_secret_file_and_never_shows(tmp_path):
    secret = tmp_path / "postgres_password"
    secret.write_text("hunter2 with spaces/and@signs\n")
    settings = load_settings({"HEADSHOT_DATA_DIR": str(tmp_path / "data"),
                              "HEADSHOT_DATABASE_URL": "postgresql+psycopg://studio@db:5432/headshots",
                              "HEADSHOT_DATABASE_PASSWORD_FILE": str(secret)})
    from sqlalchemy import make_url
    url = make_url(settings.database)
    assert url.password == "hunter2 with spaces/and@signs" and url.host == "db" and url.username == "studio"
    assert "hunter2" not in repr(settings)
    port = closed_port()  # and start-up uses it, naming neither the password nor the user when the server is away
    message = refused(START, tmp_path, database_url=f"postgresql+psycopg://studio@127.0.0.1:{port}/studio",
                      database_password_file=str(secret))
    assert f"127.0.0.1:{port}/studio cannot be reached" in message and "hunter2" not in message


def test_a_database_password_file_that_cannot_be_read_stops_start_up_in_words(tmp_path):
    message = refused(START, tmp_path, database_url="postgresql+psycopg://studio@db:5432/headshots",
                      database_password_file=str(tmp_path / "missing"))
    assert "HEADSHOT_DATABASE_PASSWORD_FILE" in message and "cannot be read" in message


@pytest.mark.parametrize("url, words", [
    ("postgresql+psycopg://studio:inline@db/headshots", "carries a password"),
    ("sqlite:////data/studio.db", "SQLite has no password"),
])
def test_a_database_password_file_beside_a_password_or_sqlite_is_refused(tmp_path, url, words):
    (tmp_path / "pw").write_text("pw\n")
    with pytest.raises(SettingsError, match=words):
        load_settings({"HEADSHOT_DATABASE_URL": url, "HEADSHOT_DATABASE_PASSWORD_FILE": str(tmp_path / "pw")})


def test_a_queue_mode_web_replica_without_a_gpu_is_refused_for_a_real_model(tmp_path):
    """It would run Instant on the CPU: ~14 GB of RAM per replica and minutes a headshot (issue 28)."""
    from pipeline.models import resolve_device
    from startup_checks import check_web_replica_device
    queue = {"HEADSHOT_QUEUE_URL": "redis://redis:6379/0", "HEADSHOT_DATA_DIR": str(tmp_path)}
    real = load_settings({**queue, "HEADSHOT_BASE_MODEL": "stabilityai/stable-diffusion-xl-base-1.0"})
    if resolve_device("auto").type != "cpu":
        check_web_replica_device(real)  # a replica with a GPU serves
        return
    with pytest.raises(SettingsError, match="this web replica has no GPU.*HEADSHOT_DEVICE=cpu"):
        check_web_replica_device(real)
    # The operator's own choice, the demo model, and a single process (no queue) all start.
    check_web_replica_device(load_settings({**queue, "HEADSHOT_BASE_MODEL": real.base_model, "HEADSHOT_DEVICE": "cpu"}))
    check_web_replica_device(load_settings({**queue, "HEADSHOT_BASE_MODEL": "tiny-sd"}))
    check_web_replica_device(load_settings({"HEADSHOT_BASE_MODEL": real.base_model}))
