"""Every setting of the studio, read once from the environment at start-up.

Each knob is declared once below, with its unit, default and allowed values
(nanoGPT's habit: all of them visible in one block). `load_settings()` builds a
frozen `Settings` from `HEADSHOT_*` environment variables, rejects unknown
`HEADSHOT_*` names (a typo must not silently fall back to a default) and
validates every value, raising `SettingsError` with a message that names the
variable. Nothing below `pipeline/` or `privacy/` reads `os.environ`: the
`Settings` object is passed down.

`configuration_reference()` renders the same declarations as Markdown, so the
documented defaults cannot drift from the running ones.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PREFIX = "HEADSHOT_"


class SettingsError(ValueError):
    """A setting has a bad value. For operators: raised at start-up, before serving."""


def _setting(default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,
             choices: tuple[str, ...] | None = None, secret: bool = False) -> Any:
    return field(default=default, metadata={
        "help": help, "minimum": minimum, "maximum": maximum, "choices": choices, "secret": secret,
    })


@dataclass(frozen=True)
class Settings:
    # --- storage -------------------------------------------------------------------------
    data_dir: Path = _setting(Path("data"), "Private data root: encrypted blobs, database, keys, Gradio's temp files.")
    database_url: str = _setting("", "SQLAlchemy URL of the metadata database: empty means SQLite at DATA_DIR/studio.db; or PostgreSQL, postgresql+psycopg://USER:PASSWORD@HOST:5432/DBNAME (after each erasure the touched tables are rewritten by VACUUM FULL, and an advisory lock keeps one retention scheduler per database).")
    master_key: str = _setting("", "Master key wrapping every session key: 32 bytes, base64. Empty means a key file (MASTER_KEY_FILE) generated on first start with mode 0600.", secret=True)
    master_key_file: Path = _setting(Path(""), "The master key's file when MASTER_KEY is empty: a Docker or Kubernetes secret (mounted read-only or owned by another user; 32 raw bytes or their base64 text, read as it is), or the studio's own key file, generated on first start with mode 0600; empty means DATA_DIR/keys/master.key.")
    database_password_file: Path = _setting(Path(""), "A file holding the password of the PostgreSQL DATABASE_URL (a Docker or Kubernetes secret, e.g. /run/secrets/postgres_password; one line), which the URL then leaves out; empty means the URL's own.")

    # --- retention (hours / days) --------------------------------------------------------
    upload_retention_hours: float = _setting(1.0, "Hours uploads, face embeddings and the trained adapter are kept after the headshots are generated.", minimum=0.05, maximum=72)
    session_hard_cap_hours: float = _setting(24.0, "Hours after consent at which uploads and adapter are erased even if no headshot was generated.", minimum=0.1, maximum=168)
    headshot_retention_days: float = _setting(7.0, "Days generated headshots are kept for their owner, counted from generation.", minimum=0.01, maximum=30)
    audit_retention_days: float = _setting(90.0, "Days the audit log (no personal data) and erasure records are kept.", minimum=1, maximum=400)
    sweep_interval_minutes: float = _setting(5.0, "Minutes between retention sweeps (a backstop: erasures are also scheduled at their exact time).", minimum=0.1, maximum=60)

    # --- upload limits --------------------------------------------------------------------
    max_upload_mb: float = _setting(25.0, "Largest accepted photo file, in MB.", minimum=1, maximum=200)
    max_pixels: int = _setting(50_000_000, "Largest accepted image, in pixels (width x height); larger is treated as a decompression bomb.", minimum=1_000_000, maximum=200_000_000)
    min_side_px: int = _setting(512, "Smallest accepted short side of a photo, in pixels.", minimum=64, maximum=4096)
    stored_max_side_px: int = _setting(1536, "Photos are downscaled to at most this long side before they are stored (minimum data).", minimum=256, maximum=8192)
    upload_grace_seconds: float = _setting(300.0, "Seconds a sealed upload may wait for its handler; after that it is deleted unread (three times as long once a queued event has named it).", minimum=1, maximum=3600)
    min_photos: int = _setting(4, "Fewest photos a set needs to train on.", minimum=1, maximum=50)
    max_photos: int = _setting(20, "Most photos a set may have.", minimum=1, maximum=100)

    # --- the web boundary ---------------------------------------------------------------
    trusted_proxies: str = _setting("", "Comma-separated IPs/networks of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed; empty: none (the TCP peer is the client, forwarded headers are dropped).")
    frame_ancestors: str = _setting("", "Who may show the studio in a frame (CSP frame-ancestors): 'none', 'self' or https origins, space-separated; empty means 'none', or https://huggingface.co on a Hugging Face Space (SPACE_ID set).")
    people_per_address: int = _setting(1, "How many people may use the studio at once from one network address: an office behind one NAT, or a proxy whose forwarded headers the studio does not believe. Every per-address limit (requests, upload bytes, uploads, generations, key attempts, open connections, share of the GPU line) is multiplied by it; per-browser limits stay as they are.", minimum=1, maximum=10_000)
    upload_budget_mb_per_minute: float = _setting(200.0, "Megabytes one browser may upload per minute (photos and checked images together), and one network address this times PEOPLE_PER_ADDRESS; also the largest single upload request.", minimum=1, maximum=5000)
    upload_stall_seconds: float = _setting(15.0, "Seconds an upload may go without sending a byte before it is cut off; nothing of it is kept.", minimum=1, maximum=300)
    upload_timeout_seconds: float = _setting(300.0, "Longest time one upload request may take in all before it is cut off; nothing of it is kept.", minimum=5, maximum=3600)
    header_timeout_seconds: float = _setting(10.0, "Seconds a connection may take to send a request's headers (from its first byte, or from opening the connection) before it is closed: half-sent headers never hold a connection longer.", minimum=1, maximum=120)

    # --- face screening -------------------------------------------------------------------
    face_detection_threshold: float = _setting(0.5, "dlib HOG detector score a detection needs to count as a face.", minimum=0.0, maximum=3.0)
    min_face_fraction: float = _setting(0.12, "Smallest face width as a fraction of the photo's short side.", minimum=0.01, maximum=0.9)
    same_person_distance: float = _setting(0.6, "Largest dlib embedding distance still counted as the same person (dlib's own 0.6).", minimum=0.2, maximum=1.0)
    max_crop_upscale: float = _setting(4.0, "Largest factor by which a face crop may be enlarged to the training size (1024 px); blurrier photos are refused, since the model learns softness from upscaled pixels.", minimum=1.0, maximum=16.0)
    duplicate_distance: float = _setting(0.12, "Embedding distance below which two photos count as near-duplicates (with a pixel-hash check).", minimum=0.0, maximum=0.5)
    screening_threads: int = _setting(0, "Photos of one upload checked at the same time (threads; face detection and the face descriptor release the GIL); 0 means one per CPU core the process may use, at most 4.", minimum=0, maximum=16)

    # --- generation -----------------------------------------------------------------------
    base_model: str = _setting("stabilityai/stable-diffusion-xl-base-1.0", "Base model: a hub id, a local diffusers directory, or tiny-sd / tiny-sdxl (random weights, offline demo).")
    device: str = _setting("auto", "Torch device: auto, cpu, cuda, cuda:N.")
    fp16_vae: str = _setting("", "fp16-safe VAE for an SDXL base on GPUs without native bf16 (T4, V100), where the model runs in fp16: a hub id or local diffusers VAE directory, e.g. madebyollin/sdxl-vae-fp16-fix. SDXL's own VAE overflows in fp16 and is run in fp32 there (force_upcast), costing memory. Empty means the model's own VAE; unused in bf16 or fp32 and for SD 1.5 / 2.x.")
    face_adapter: str = _setting("h94/IP-Adapter", "Instant mode's tuning-free face adapter (IP-Adapter plus-face, Apache-2.0, with its CLIP ViT-H image encoder): a hub id or a local directory laid out like h94/IP-Adapter (models/image_encoder, models/ip-adapter-plus-face_sd15.safetensors, sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors), or tiny-ip-adapter (random weights, offline demo with tiny-sd / tiny-sdxl: the default on them unless set). SD 1.5 and SDXL bases only.")
    face_adapter_scale: float = _setting(0.7, "How strongly Instant mode's face adapter steers the image toward the photos' face (IP-Adapter scale; 0 ignores the photos, above ~0.8 the prompt's outfit and background start to fade).", minimum=0.0, maximum=1.5)
    studio_face_adapter_scale: float = _setting(0.0, "Studio mode: also steer generation with Instant mode's face adapter at this scale, on top of the trained model (0 = off, the default until it is measured on real weights; see README, research notes).", minimum=0.0, maximum=1.5)
    speed_fuse_lora: bool = _setting(False, "Generate with the trained LoRA folded into a copy of the UNet weights it touches for the run (no peft layers in the denoising loop), the shared weights copied back bit for bit afterwards. Off until measured on a GPU (bench/bench_gpu.py).")
    speed_channels_last: bool = _setting(False, "Keep the UNet and VAE weights in channels-last memory order (faster convolutions on tensor-core GPUs; the same numbers up to rounding). Off until measured on a GPU.")
    speed_compile_unet: bool = _setting(False, "Compile the UNet's repeated transformer blocks with torch.compile (regional compilation) on a CUDA GPU; the compile time is paid by the first run after start-up. Ignored on a CPU.")
    default_mode: str = _setting("studio", "The mode the page offers first: studio (trains a model of the face: best likeness, minutes on a GPU) or instant (the face adapter: seconds, nothing of the face stored). On a ZeroGPU Space, where a free GPU call lasts about a minute, instant is the default.", choices=("studio", "instant"))
    zero_gpu: bool = _setting(False, "Whether the studio runs on a ZeroGPU Space; taken from SPACES_ZERO_GPU (set by Hugging Face) unless given. Instant mode is then offered first and planned to fit one default ZeroGPU call; Studio mode needs dedicated GPU hardware.")
    train_steps: int = _setting(0, "LoRA training steps; 0 scales with the number of photos (30 on the demo models tiny-sd / tiny-sdxl, unless set).", minimum=0, maximum=10_000)
    images_per_style: int = _setting(8, "Headshots per chosen style a person gets unless they choose otherwise: where the page's slider starts, and the command line's count.", minimum=1, maximum=16)
    max_images_per_style: int = _setting(16, "Most headshots per chosen style a person may ask for: the end of the page's slider (on ZeroGPU, lower if one GPU call cannot make that many; the page says so); admission refuses more.", minimum=1, maximum=16)
    candidates_per_headshot: int = _setting(3, "Over-generation: candidates made per headshot shown; each style's candidates are ranked by likeness (dlib, and SFace when SFACE_MODEL is set) and the best IMAGES_PER_STYLE kept. The others are dropped in memory, never stored (1 on the demo models, unless set).", minimum=1, maximum=8)
    sface_model: Path = _setting(Path(""), "Second face encoder for ranking: a local copy of OpenCV Zoo's SFace (face_recognition_sface_2021dec.onnx, Apache-2.0), run by the installed OpenCV. Empty: dlib ranks alone (no PyPI package ships the file).")
    face_detail: bool = _setting(True, "Face-detail pass on each kept headshot (Studio and Instant): the face is cropped, redrawn at the model's native size by img2img with the same model at FACE_DETAIL_STRENGTH, and pasted back with a feathered edge (off on the demo models, unless set).")
    face_detail_strength: float = _setting(0.3, "How much the face-detail pass redraws the face (img2img strength: 0 keeps it, 1 redraws it from noise).", minimum=0.05, maximum=0.8)
    prior_preservation_weight: float = _setting(0.0, "Prior preservation: weight of the class loss on a 'photo of a person' set the base model makes once for itself (never a visitor's photo), cached per base model with its latents and text embeddings; 0 = off (the default until measured on real weights).", minimum=0.0, maximum=2.0)
    prior_class_images: int = _setting(24, "Prior preservation: images in the base model's class set (made once per base model, per process).", minimum=1, maximum=400)
    likeness_threshold: float = _setting(0.5, "Lowest likeness score (0–1) for a headshot to be shown; weaker ones are held back (0 on the demo models, whose pictures are noise, unless set).", minimum=0.0, maximum=1.0)
    unsafe_threshold: float = _setting(0.5, "Unsafe-content probability at which a headshot is blocked.", minimum=0.0, maximum=1.0)
    queue_size: int = _setting(8, "Most training jobs waiting for the GPU at once.", minimum=1, maximum=200)

    # --- GPU workers (queue mode) -----------------------------------------------------------
    queue_url: str = _setting("", "Queue mode: the Redis URL of the Celery broker, e.g. redis://redis:6379/0. Empty (the default) runs the GPU work inside the app process, one job at a time; set, the app enqueues studio jobs and `python cli.py worker` processes (one per GPU) run them, on the shared database (HEADSHOT_DATABASE_URL) and the shared data directory. Messages carry only job ids. Instant jobs stay in the app process.", secret=True)
    job_visibility_seconds: float = _setting(7200.0, "Queue mode: seconds the broker waits for a worker to acknowledge a job before giving it to another (Celery's visibility timeout); longer than the longest job, or a slow job would run twice at once were it not for the row claim.", minimum=60, maximum=86400)
    worker_stale_seconds: float = _setting(60.0, "Queue mode: seconds without a heartbeat (a running worker writes one every half second) after which a job's worker counts as dead, and the job is run again or marked interrupted.", minimum=2, maximum=3600)
    worker_port: int = _setting(0, "Queue mode: the port of a worker's /healthz, /readyz and /metrics (Prometheus: queue depth, job durations and waits; no personal data), on all interfaces; 0 serves none.", minimum=0, maximum=65535)
    metrics: bool = _setting(True, "Serve Prometheus metrics at the app's /metrics: queue depth, running jobs, job durations and waits, interrupted jobs. Counts and durations only (no session, job, name or address), so public by default, like the page's own place in line; false answers 404.")
    job_attempts: int = _setting(2, "Queue mode: how many times a job may start; a job whose worker died is run again while attempts remain, then marked interrupted (a job that kills workers must not kill them all).", minimum=1, maximum=5)

    # --- provenance -----------------------------------------------------------------------
    c2pa_cert_file: Path = _setting(Path(""), "PEM certificate chain for C2PA signing; empty means a local CA and signer generated under DATA_DIR/keys.")
    c2pa_key_file: Path = _setting(Path(""), "PEM private key for C2PA signing, with C2PA_CERT_FILE.", secret=True)
    visible_mark: bool = _setting(False, "Add a visible 'AI-generated' corner mark to headshots.")

    # --- the notice -----------------------------------------------------------------------
    contact_email: str = _setting("privacy@example.org", "Address shown in the privacy notice for questions and requests.")
    host_name: str = _setting("", "Hosting provider named in the notice as the only party touching photos (e.g. 'Hugging Face'); empty when self-hosted.")
    log_client_ip: bool = _setting(False, "Record client IP addresses in the audit log (off: no IP addresses are kept).")

    # --- not a setting: which of the above the operator gave (load_settings fills it) --------------
    explicit: frozenset = field(default=frozenset(), repr=False, compare=False, metadata={"internal": True})

    def __post_init__(self) -> None:
        # One spelling of every path, fixed once at start-up: a relative HEADSHOT_DATA_DIR (the default
        # `data`) resolved against the directory the app was started from. Stores record paths and Gradio
        # hands handlers absolute ones; two spellings of one file made every upload unreadable.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path) and str(value) not in ("", "."):
                object.__setattr__(self, f.name, value.expanduser().resolve())

    def for_model(self, is_demo: bool) -> "Settings":
        """The settings a run on this base model uses: on a demo model (random weights), DEMO_DEFAULTS for every
        setting the operator did not give; unchanged for a real model."""
        if not is_demo:
            return self
        return dataclasses.replace(self, **{name: value for name, value in DEMO_DEFAULTS.items()
                                            if name not in self.explicit})

    # --- derived paths --------------------------------------------------------------------
    @property
    def database(self) -> str:
        if str(self.database_password_file) not in ("", "."):
            return url_with_password(self.database_url, self.database_password_file)
        return self.database_url or f"sqlite:///{(self.data_dir / 'studio.db').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.master_key_file if str(self.master_key_file) not in ("", ".") else self.data_dir / "keys" / "master.key"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "vault"

    @property
    def gradio_temp_dir(self) -> Path:
        return self.data_dir / "gradio-tmp"

    @property
    def upload_retention_seconds(self) -> float:
        return self.upload_retention_hours * 3600

    @property
    def session_hard_cap_seconds(self) -> float:
        return self.session_hard_cap_hours * 3600

    @property
    def headshot_retention_seconds(self) -> float:
        return self.headshot_retention_days * 86400

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def upload_budget_bytes_per_minute(self) -> int:
        return int(self.upload_budget_mb_per_minute * 1024 * 1024)

    @property
    def trusted_proxy_networks(self) -> tuple:
        return parse_networks(self.trusted_proxies)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[IPNetwork, ...]:
    """'10.0.0.0/8, 127.0.0.1' -> networks; raises ValueError naming the bad entry."""
    networks = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network") from None
    return tuple(networks)


def setting_fields() -> tuple[dataclasses.Field, ...]:
    """The settings themselves (each a HEADSHOT_* variable), without the bookkeeping field `explicit`."""
    return tuple(f for f in dataclasses.fields(Settings) if not f.metadata.get("internal"))


# The offline demo's models have random weights: their images are noise whatever the recipe, so a demo
# trains only long enough to show the whole path, holds nothing back for likeness (noise resembles no one,
# and the page would blame the person's photos), and pairs Instant mode with the random-weight face
# adapter (the real one cannot drive a tiny model). Applied to runs on a demo model only, and never over
# a value the operator set (`Settings.for_model`).
DEMO_BASE_MODELS = ("tiny-sd", "tiny-sdxl")
DEMO_FACE_ADAPTER = "tiny-ip-adapter"
DEMO_TRAIN_STEPS = 30
DEMO_DEFAULTS: dict[str, Any] = {"train_steps": DEMO_TRAIN_STEPS, "likeness_threshold": 0.0,
                                 "face_adapter": DEMO_FACE_ADAPTER,
                                 # Noise has no face to rank or redraw: over-generating and the face-detail pass
                                 # would only triple a CPU demo's wait.
                                 "candidates_per_headshot": 1, "face_detail": False}


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _parse(f: dataclasses.Field, raw: str) -> Any:
    name, kind = env_name(f.name), f.type
    meta = f.metadata
    try:
        if kind == "bool":
            value: Any = _BOOL[raw.strip().lower()]
        elif kind == "int":
            value = int(raw.strip().replace("_", ""))
        elif kind == "float":
            value = float(raw.strip())
        elif kind == "Path":
            value = Path(raw.strip()).expanduser()
        else:
            value = raw.strip()
    except (KeyError, ValueError):
        expected = {"bool": "true or false", "int": "a whole number", "float": "a number"}.get(kind, "a value")
        raise SettingsError(f"{name}={raw!r} is not {expected}.") from None
    if meta["choices"] is not None and value not in meta["choices"]:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(meta['choices'])}.")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise SettingsError(f"{name}={raw!r} is below its minimum {meta['minimum']}.")
    if meta["maximum"] is not None and value > meta["maximum"]:
        raise SettingsError(f"{name}={raw!r} is above its maximum {meta['maximum']}.")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (default: the process environment), or raise SettingsError."""
    environ = os.environ if environ is None else environ
    fields = {env_name(f.name): f for f in setting_fields()}
    unknown = sorted(k for k in environ if k.startswith(PREFIX) and k not in fields)
    if unknown:
        raise SettingsError(f"Unknown setting {', '.join(unknown)}; known settings are listed in docs/CONFIGURATION.md.")
    values = {f.name: _parse(f, environ[name]) for name, f in fields.items() if name in environ}
    if not values.get("frame_ancestors") and environ.get("SPACE_ID"):
        values["frame_ancestors"] = SPACE_FRAME_ANCESTORS  # a Space shows the app in an iframe on huggingface.co
    if "zero_gpu" not in values:  # the platform's own variable (studio/zerogpu.py reads the same one)
        values["zero_gpu"] = environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    if "default_mode" not in values and values["zero_gpu"]:
        values["default_mode"] = "instant"  # a Studio run cannot fit in a free ZeroGPU call
    settings = Settings(**values, explicit=frozenset(f.name for name, f in fields.items() if name in environ))
    _check_consistency(settings)
    return settings.for_model(settings.base_model in DEMO_BASE_MODELS)


SPACE_FRAME_ANCESTORS = "https://huggingface.co"
DATABASE_SCHEMES = ("sqlite:///", "postgresql+psycopg://")
_FRAME_SOURCE = re.compile(r"^('none'|'self'|https://(\*\.)?[a-z0-9.-]+(:\d+)?)$")


MASTER_KEY_BYTES = 32  # AES-256


def decode_master_key(secret_b64: str) -> bytes:
    """HEADSHOT_MASTER_KEY's 32 bytes, or SettingsError (the value itself is never repeated: it is a secret)."""
    try:
        key = base64.b64decode(secret_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise SettingsError(f"HEADSHOT_MASTER_KEY must be {MASTER_KEY_BYTES} random bytes, base64-encoded "
                            "(e.g. `python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\"`).")
    return key


def url_with_password(database_url: str, password_file: Path) -> str:
    """The database URL with the password read from `password_file` (its first line), or SettingsError in words
    (never the password, nor the URL, which may carry the user's name)."""
    from sqlalchemy import make_url

    name = "HEADSHOT_DATABASE_PASSWORD_FILE"
    try:
        lines = password_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SettingsError(f"{name}={password_file} cannot be read by user {os.geteuid()} ({reason}); mount the "
                            "secret there, readable by the studio's user.") from None
    if not lines or not lines[0]:
        raise SettingsError(f"{name}={password_file} is empty; put the database password on its first line.")
    return make_url(database_url).set(password=lines[0]).render_as_string(hide_password=False)


def _check_consistency(s: Settings) -> None:
    if s.master_key:
        decode_master_key(s.master_key)
    if s.min_photos > s.max_photos:
        raise SettingsError(f"HEADSHOT_MIN_PHOTOS ({s.min_photos}) is larger than HEADSHOT_MAX_PHOTOS ({s.max_photos}).")
    if s.images_per_style > s.max_images_per_style:
        raise SettingsError(f"HEADSHOT_IMAGES_PER_STYLE ({s.images_per_style}) is larger than "
                            f"HEADSHOT_MAX_IMAGES_PER_STYLE ({s.max_images_per_style}).")
    if s.upload_retention_hours > s.session_hard_cap_hours:
        raise SettingsError("HEADSHOT_UPLOAD_RETENTION_HOURS must not exceed HEADSHOT_SESSION_HARD_CAP_HOURS.")
    if not _EMAIL.match(s.contact_email):
        raise SettingsError(f"HEADSHOT_CONTACT_EMAIL={s.contact_email!r} is not an e-mail address.")
    if bool(str(s.c2pa_cert_file) not in ("", ".")) != bool(str(s.c2pa_key_file) not in ("", ".")):
        raise SettingsError("HEADSHOT_C2PA_CERT_FILE and HEADSHOT_C2PA_KEY_FILE are set together or not at all.")
    try:
        s.trusted_proxy_networks
    except ValueError as exc:
        raise SettingsError(f"HEADSHOT_TRUSTED_PROXIES: {exc}.") from None
    sources = s.frame_ancestors.split()
    if any(not _FRAME_SOURCE.match(src) for src in sources) or ("'none'" in sources and len(sources) > 1):
        raise SettingsError(f"HEADSHOT_FRAME_ANCESTORS={s.frame_ancestors!r}: use 'none', 'self' or https origins.")
    if s.database_url and not s.database_url.startswith(DATABASE_SCHEMES):
        # Only these two are made to forget erased rows (privacy/store/database.py). Name the scheme only:
        # the rest of the URL may carry a password.
        scheme = s.database_url.split("://", 1)[0] if "://" in s.database_url else "(no scheme)"
        raise SettingsError(f"HEADSHOT_DATABASE_URL: {scheme}://… is not supported; use "
                            f"{' or '.join(DATABASE_SCHEMES)}…")
    if str(s.database_password_file) not in ("", "."):
        if not s.database_url.startswith("postgresql"):
            raise SettingsError("HEADSHOT_DATABASE_PASSWORD_FILE is for a PostgreSQL HEADSHOT_DATABASE_URL; "
                                "SQLite has no password.")
        if "@" in s.database_url and ":" in s.database_url.split("://", 1)[1].split("@", 1)[0]:
            raise SettingsError("HEADSHOT_DATABASE_URL carries a password and HEADSHOT_DATABASE_PASSWORD_FILE "
                                "gives one too; leave it out of the URL (postgresql+psycopg://USER@HOST/DB).")
    if s.queue_url and not s.queue_url.startswith(("redis://", "rediss://")):
        raise SettingsError("HEADSHOT_QUEUE_URL: use redis://HOST:6379/0 or rediss://… (the Celery broker).")
    if s.device != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", s.device):
        raise SettingsError(f"HEADSHOT_DEVICE={s.device!r} is not one of auto, cpu, cuda, cuda:N, mps.")


def configuration_reference() -> str:
    """Markdown table of every setting with its default and meaning, generated from `Settings`."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in setting_fields():
        default = "" if f.metadata["secret"] and f.default else f.default
        shown = f"`{default}`" if str(default) not in ("", ".") else "(empty)"
        bounds = []
        if f.metadata["minimum"] is not None:
            bounds.append(f"min {f.metadata['minimum']}")
        if f.metadata["maximum"] is not None:
            bounds.append(f"max {f.metadata['maximum']}")
        if f.metadata["choices"] is not None:
            bounds.append("one of " + ", ".join(f.metadata["choices"]))
        extra = f" ({', '.join(bounds)})" if bounds else ""
        rows.append(f"| `{env_name(f.name)}` | {shown} | {f.metadata['help']}{extra} |")
    return "\n".join(rows) + "\n"


# Third-party variables we set before gradio / huggingface_hub are imported, so that
# nothing phones home (promise 2). `setdefault`: an operator may still override them.
PRIVACY_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}


def apply_privacy_environment(environ: dict[str, str] | None = None) -> None:
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    for key, value in PRIVACY_ENVIRONMENT.items():
        environ.setdefault(key, value)
