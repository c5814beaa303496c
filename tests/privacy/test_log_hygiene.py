"""Log hygiene: with the root logger at DEBUG, no upload's metadata reaches the logs through Pillow & co."""

import importlib.util
import io
import logging

import pytest
from PIL import Image, PngImagePlugin

from privacy.intake.ingest import IngestLimits, ingest
from privacy.log_hygiene import CHATTY_LOGGERS, QUIET_LEVEL, quiet_third_party_loggers

LIMITS = IngestLimits(max_bytes=2_000_000, max_pixels=1_000_000, min_side=32, stored_max_side=256)
NAME, ADDRESS = "Jane Example", "12 Example Street"
FILE_NAME = "jane-at-home"


class Capture(logging.Handler):
    """Keeps every record, whatever its level or logger."""

    def __init__(self):
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in self.records)


def _third_party_loggers() -> list[logging.Logger]:
    return [logger for name, logger in logging.root.manager.loggerDict.items()
            if isinstance(logger, logging.Logger)
            and any(name == parent or name.startswith(parent + ".") for parent in CHATTY_LOGGERS)]


@pytest.fixture
def debug_logs():
    """The root logger at DEBUG with a handler that keeps everything; all logging state restored after."""
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    for name in CHATTY_LOGGERS:
        logging.getLogger(name)
    saved = {logger: logger.level for logger in _third_party_loggers()}
    for logger in saved:  # as a fresh process has them, whatever earlier tests did
        logger.setLevel(logging.NOTSET)
    capture = Capture()
    root.handlers[:] = [capture]
    root.setLevel(logging.DEBUG)
    yield capture
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for logger in _third_party_loggers():
        logger.setLevel(saved.get(logger, logging.NOTSET))


def exif() -> Image.Exif:
    tags = Image.Exif()
    tags[0x013B] = NAME  # Artist
    tags[0x010E] = ADDRESS  # ImageDescription
    return tags


def jpeg_with_exif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (180, 120, 90)).save(buf, format="JPEG", exif=exif())
    return buf.getvalue()


def png_with_text_and_exif() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", NAME)  # tEXt chunks
    info.add_text("Description", ADDRESS)
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (180, 120, 90)).save(buf, format="PNG", pnginfo=info, exif=exif())  # and eXIf
    return buf.getvalue()


def upload_both(tmp_path) -> None:
    """Both photos through the real ingest path, read from files named after the person as uploads are."""
    for suffix, data in ((".jpg", jpeg_with_exif()), (".png", png_with_text_and_exif())):
        path = tmp_path / (FILE_NAME + suffix)
        path.write_bytes(data)
        ingest(path.read_bytes(), LIMITS)


def test_without_quieting_pillow_logs_the_exif_of_uploads_at_debug(debug_logs, tmp_path):
    # The control: the leak is real, so the test below can fail.
    for data in (jpeg_with_exif(), png_with_text_and_exif()):
        debug_logs.records.clear()
        ingest(data, LIMITS)
        assert NAME in debug_logs.text() and ADDRESS in debug_logs.text()


def test_quieted_third_party_loggers_keep_upload_metadata_out_of_debug_logs(debug_logs, tmp_path):
    quiet_third_party_loggers()
    logging.getLogger().setLevel(logging.DEBUG)  # set again after: the root's level must not matter
    upload_both(tmp_path)
    logging.getLogger("privacy.test").debug("our own debug line")  # the handler does see DEBUG records
    text = debug_logs.text()
    assert "our own debug line" in text
    for secret in (NAME, ADDRESS, FILE_NAME):
        assert secret not in text


def test_warnings_of_quieted_loggers_still_come_through(debug_logs):
    quiet_third_party_loggers()
    logging.getLogger("PIL.Image").warning("a real problem")
    logging.getLogger("PIL.Image").info("chatter")
    assert [r.getMessage() for r in debug_logs.records] == ["a real problem"]


def test_a_child_logger_set_to_debug_explicitly_is_quieted_too(debug_logs, tmp_path):
    logging.getLogger("PIL.TiffImagePlugin").setLevel(logging.DEBUG)  # would bypass its parent's level
    quiet_third_party_loggers()
    upload_both(tmp_path)
    assert NAME not in debug_logs.text()


def test_quieting_is_idempotent_and_adds_no_handlers_or_filters(debug_logs):
    root_handlers = logging.getLogger().handlers[:]
    # Libraries may carry their own handlers (urllib3 adds a NullHandler on import): those stay as they were.
    before = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).filters[:])
              for name in CHATTY_LOGGERS}
    quiet_third_party_loggers()
    quiet_third_party_loggers()
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        assert logger.level == QUIET_LEVEL and (logger.handlers, logger.filters) == before[name]
    assert logging.getLogger().handlers == root_handlers


@pytest.mark.parametrize("name", sorted(CHATTY_LOGGERS))
def test_every_quieted_logger_belongs_to_an_installed_package(name):
    # A misspelt name would quiet nothing and pass every other test.
    assert importlib.util.find_spec(name) is not None


def test_start_up_prints_no_warning_an_operator_cannot_act_on():
    """transformers warns, in every process, that two image processors diffusers imports fall back from
    torchvision to Pillow: the studio wants Pillow's, and nothing the operator sets changes it (issue 28)."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    code = ("import logging; logging.basicConfig(level=logging.INFO)\n"
            "from privacy.log_hygiene import quiet_third_party_loggers; quiet_third_party_loggers()\n"
            "import pipeline.models, pipeline.instant\n"
            "import diffusers.loaders.ip_adapter, diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion\n")
    quiet = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "torchvision" not in quiet.stderr, quiet.stderr[-2000:]
    # Without the filter the warnings are there: the test would see them come back.
    loud = subprocess.run([sys.executable, "-c", code.replace("quiet_third_party_loggers()\n", "\n")], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "requires torchvision" in loud.stderr, loud.stderr[-2000:]
