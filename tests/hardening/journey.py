"""One person's whole visit through the real server with gradio_client: consent, upload, generate, download, delete."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from gradio_client import Client, handle_file

STYLE = "corporate_grey"


@dataclass
class Visit:
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds
    headshots: list[bytes] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    cookies: dict = field(default_factory=dict)
    accepted: int = 0
    receipt_html: str = ""
    client: Client | None = None


def run_visit(url: str, photos: list[Path], *, delete: bool = True, on_uploaded=None,
              forwarded_for: str | None = None) -> Visit:
    """One visit. `forwarded_for`: the visitor's own address, as a trusted proxy in front of the server would say."""
    visit = Visit()
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    client = visit.client = Client(url, verbose=False, download_files=False, analytics_enabled=False, headers=headers)

    def timed(step, fn, *args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            visit.timings[step] = time.perf_counter() - started

    timed("consent", client.predict, True, True, True, api_name="/consent")
    report = timed("upload", client.predict, [handle_file(str(p)) for p in photos], api_name="/upload")[0]
    visit.accepted = report.count("data-accepted='true'")
    if on_uploaded is not None:
        on_uploaded(visit)
    gallery = timed("generate", client.predict, [STYLE], 1, api_name="/generate")[0]
    tokens = re.findall(r"media/([\w-]+)'", gallery)
    visit.urls = [f"{url}/media/{t}" for t in tokens]
    visit.cookies = dict(client.cookies)

    def download():
        for u in visit.urls:
            response = httpx.get(u, cookies=visit.cookies, timeout=60)
            response.raise_for_status()
            visit.headshots.append(response.content)

    timed("download", download)
    if delete:
        visit.receipt_html = timed("delete", client.predict, api_name="/delete_now")[0]
    return visit
