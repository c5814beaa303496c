"""What start-up checks before serving, beyond the values themselves: can the settings actually be used?

`settings.load_settings` refuses a malformed value; this module refuses a well-formed one that cannot work
here: a data directory this user cannot write, a master key file (the studio's own, or a mounted Docker or
Kubernetes secret) that cannot be read or is of the wrong size or mode, a database password file that cannot be
read, a database URL that reaches no database, a face-adapter directory without the adapter's files, a second face
encoder's file that is not there or not SFace. Each failure is a
`SettingsError` naming the variable in one sentence, so `python app.py` and the container's entrypoint
(`python startup_checks.py`, before `exec python app.py`) both exit 2 with it, never a traceback.

    python startup_checks.py     exit 0 when the studio can start with these settings, else 2 and why
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from settings import DEMO_BASE_MODELS, DEMO_FACE_ADAPTER, Settings, SettingsError, load_settings

DATABASE_TIMEOUT_SECONDS = 5  # a database that does not answer in this long is refused, not waited for


def check_before_serving(settings: Settings) -> None:
    """Raise SettingsError, naming the variable, for the first setting that cannot be used on this machine."""
    check_data_dir(settings.data_dir)
    check_master_key(settings)
    check_database(settings.database)  # with the password of HEADSHOT_DATABASE_PASSWORD_FILE, read here
    check_face_adapter(settings.face_adapter, settings.base_model)
    check_sface_model(settings.sface_model)
    check_web_replica_device(settings)


def check_data_dir(data_dir: Path) -> None:
    """The private data root exists (made 0700 if not) and this user can write in it."""
    from privacy.store.private_dirs import ensure_private_dir

    try:
        ensure_private_dir(data_dir)
        probe = data_dir / ".write-probe"
        probe.touch()
        probe.unlink()
    except (OSError, SettingsError):  # ensure_private_dir's own words do not name the variable
        raise SettingsError(
            f"HEADSHOT_DATA_DIR={data_dir} is not writable by user {os.getuid()}; point it at a directory "
            "this user may create and write, or in the container mount a volume there "
            "(docker run -v headshot-data:/data) or chown the host directory to 1000.") from None


def check_master_key(settings: Settings) -> None:
    """The master key is usable: the variable's value (checked by load_settings) or the key file, made if absent."""
    from privacy.store.master_key import load_master_key

    try:
        load_master_key(settings.master_key, settings.key_file)
    except OSError as exc:
        raise SettingsError(f"HEADSHOT_MASTER_KEY_FILE={settings.key_file} cannot be read or created by user "
                            f"{os.geteuid()} ({exc.strerror or type(exc).__name__}); a mounted secret must be "
                            "readable by the studio's user.") from None


def check_database(database_url: str) -> None:
    """A PostgreSQL URL reaches a server that accepts its credentials within DATABASE_TIMEOUT_SECONDS.

    Empty means SQLite inside the data directory (checked with it). The message names host, port and
    database, never the user or password.
    """
    if not database_url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, make_url, text

    url = make_url(database_url)
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    engine = create_engine(url, connect_args={"connect_timeout": DATABASE_TIMEOUT_SECONDS})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # the driver's message may carry the password: only its kind is shown
        raise SettingsError(f"HEADSHOT_DATABASE_URL: the database at {where} cannot be reached or refused the "
                            f"login ({type(exc).__name__}); check that it is running and the URL's host, port, "
                            "user and password.") from None
    finally:
        engine.dispose()


def check_face_adapter(face_adapter: str, base_model: str) -> None:
    """A local face-adapter directory holds an adapter's files; the random-weight adapter goes with a demo model.

    A hub id cannot be checked offline: the page says whether Instant mode can serve once the model is loaded.
    """
    from pipeline.face_adapter_layout import ADAPTER_HINT, FACE_ADAPTER_FILES

    if face_adapter == DEMO_FACE_ADAPTER:
        if base_model not in DEMO_BASE_MODELS:
            raise SettingsError(f"HEADSHOT_FACE_ADAPTER={DEMO_FACE_ADAPTER} has random weights and serves only the "
                                f"demo base models ({', '.join(DEMO_BASE_MODELS)}); unset it for a real model.")
        return
    path = Path(face_adapter).expanduser()
    if not _looks_like_a_path(face_adapter) and not path.exists():
        return  # a hub id (owner/name)
    if not path.is_dir():
        raise SettingsError(f"HEADSHOT_FACE_ADAPTER={face_adapter} is not a directory. {ADAPTER_HINT}")
    missing = [files.missing_in(path) for files in FACE_ADAPTER_FILES.values()]
    if all(m is not None for m in missing):  # neither family's weights (or no image encoder)
        raise SettingsError(f"HEADSHOT_FACE_ADAPTER={face_adapter} has no {missing[0].as_posix()} (nor the SDXL "
                            f"adapter's files). {ADAPTER_HINT}")


def check_sface_model(sface_model: Path) -> None:
    """The second face encoder's file, when one is named, is there and loads as SFace (OpenCV, ~0.1 s)."""
    if str(sface_model) in ("", "."):
        return
    if not Path(sface_model).is_file():
        raise SettingsError(f"HEADSHOT_SFACE_MODEL={sface_model} is not a file: name a local copy of OpenCV Zoo's "
                            "face_recognition_sface_2021dec.onnx, or leave it empty to rank with dlib alone.")
    from errors import ModelUnavailable
    from pipeline.recipe.ranking import sface_encoder
    try:
        sface_encoder(Path(sface_model))
    except ModelUnavailable as exc:
        raise SettingsError(str(exc)) from None


def check_web_replica_device(settings: Settings) -> None:
    """In queue mode a web replica still runs Instant mode itself (its photos stay in that process's memory, never
    in a message): with a real base model it needs a GPU. On a CPU the base model would take ~14 GB of RAM per
    replica and minutes per headshot, so `auto` finding no GPU is refused; HEADSHOT_DEVICE=cpu accepts it."""
    if not settings.queue_url or settings.base_model in DEMO_BASE_MODELS or settings.device != "auto":
        return
    from pipeline.models import resolve_device

    if resolve_device("auto").type == "cpu":
        raise SettingsError("HEADSHOT_QUEUE_URL is set and this web replica has no GPU, yet it runs Instant mode on "
                            f"the base model {settings.base_model!r} itself; give it a GPU (docker-compose.yml: the "
                            "app service's device_ids), or set HEADSHOT_DEVICE=cpu to run Instant on the CPU anyway.")


def _looks_like_a_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or value.count("/") != 1


def main(environ: "dict[str, str] | None" = None) -> int:
    from privacy.log_hygiene import quiet_third_party_loggers

    quiet_third_party_loggers()  # a check may import the ML libraries: none of their unactionable warnings
    try:
        check_before_serving(load_settings(environ))
    except SettingsError as exc:
        print(f"Configuration error: {exc} See docs/CONFIGURATION.md.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
