"""Log hygiene: third-party loggers that see what people send are held at WARNING, whatever the root level.

Running the studio with the root logger at DEBUG (to chase a bug) must not write uploads'
metadata into the logs: Pillow's TIFF parser, which reads every JPEG's and PNG's EXIF block,
logs each tag with its value at DEBUG (`tag: Artist (315) ... value: b'Jane Example'`), and
the HTTP clients log request URLs (with upload file names) and headers (with cookies). A
level set on a named logger is checked where the record is made, before any handler or the
root's level is consulted, so these stay quiet even under `logging.basicConfig(level=DEBUG)`.
"""

from __future__ import annotations

import logging
import re

QUIET_LEVEL = logging.WARNING

# Each logger (and its children), with what it would otherwise log of a person's data.
# Checked against the installed packages; WARNING and above still come through.
CHATTY_LOGGERS: dict[str, str] = {
    "PIL": "DEBUG: EXIF/TIFF tag values of uploads (Artist, ImageDescription, GPS), PNG chunk names",
    "python_multipart": "INFO: the upload form parser's temporary files, their paths and names",
    "multipart": "the same parser under its old import name",
    "httpx": "INFO: every request URL, upload file names included (gradio_client, huggingface_hub)",
    "httpcore": "DEBUG: request and response headers, cookies and tokens included",
    "httpx2": "the same as httpx (huggingface_hub's client)",
    "httpcore2": "the same as httpcore",
    "urllib3": "DEBUG: every host and URL fetched",
    "fsspec": "DEBUG: 'open file: <path>' for files in Gradio's upload cache",
    "gradio": "DEBUG: file paths and URLs of cached uploads and results",
}


# Start-up warnings an operator can do nothing about, dropped where they are made. transformers warns once per
# class that its torchvision image processors fall back to the Pillow ones; diffusers imports two such classes
# (CLIPImageProcessor, SiglipImageProcessor) in every process. The Pillow processors are what the studio wants:
# torchvision is not a dependency, and installing it only to silence this would add a second image stack.
UNACTIONABLE_WARNINGS: dict[str, re.Pattern] = {
    "transformers.utils.import_utils": re.compile(r"requires torchvision \(not installed\); falling back to"),
}


class _DropMatching(logging.Filter):
    def __init__(self, pattern: re.Pattern) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(str(record.msg))


def quiet_third_party_loggers() -> None:
    """Set every logger in CHATTY_LOGGERS to WARNING, and any child already set lower. Idempotent.

    Also drops the start-up warnings in UNACTIONABLE_WARNINGS. Call once at start-up, after logging is configured
    (app.main, the worker, startup_checks), before the ML libraries are imported. Children created later
    (Pillow imports plugins lazily) have no level of their own and inherit WARNING.
    """
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(QUIET_LEVEL)
    for name, pattern in UNACTIONABLE_WARNINGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) for f in logger.filters):
            logger.addFilter(_DropMatching(pattern))
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and _is_child(name) and logging.NOTSET < logger.level < QUIET_LEVEL:
            logger.setLevel(QUIET_LEVEL)  # someone set it to DEBUG explicitly: that would bypass its parent


def _is_child(name: str) -> bool:
    return any(name.startswith(parent + ".") for parent in CHATTY_LOGGERS)
