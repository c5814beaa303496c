"""A browser, or an attacker, speaking Gradio's wire protocol with raw HTTP (httpx), nothing of gradio_client.

Each `RawBrowser` has its own cookie jar, its own `session_hash` (which an attacker may set to
someone else's), and its own source address on the loopback network (Linux routes all of
127.0.0.0/8 to `lo`, so 127.0.0.N are distinct clients to the server without any proxy).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Answer:
    success: bool
    data: list | None = None
    error: str | None = None
    status: int = 200  # of the join request itself; not 200 means the boundary refused it


@dataclass
class RawBrowser:
    url: str
    address: str = "127.0.0.1"
    session_hash: str = field(default_factory=lambda: secrets.token_hex(5))
    timeout: float = 120

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=self.timeout,
                                 transport=httpx.HTTPTransport(local_address=self.address))
        self._config: dict | None = None

    def close(self) -> None:
        self.http.close()

    def open_page(self) -> httpx.Response:
        response = self.http.get("/")
        self._config = None
        return response

    @property
    def config(self) -> dict:
        if self._config is None:
            self._config = self.http.get("/config").json()
        return self._config

    def endpoint(self, api_name: str) -> tuple[int, int]:
        """(fn_index, trigger_id) of a named event, read from the page's config as a browser would."""
        for dep in self.config["dependencies"]:
            if dep.get("api_name") == api_name:
                return dep["id"], dep["targets"][0][0]
        raise KeyError(api_name)

    def join(self, api_name: str, data: list, *, session_hash: str | None = None) -> httpx.Response:
        fn_index, trigger_id = self.endpoint(api_name)
        return self.http.post("/gradio_api/queue/join", json={
            "data": data, "event_data": None, "fn_index": fn_index, "trigger_id": trigger_id,
            "session_hash": session_hash or self.session_hash})

    def call(self, api_name: str, data: list, *, session_hash: str | None = None) -> Answer:
        """Join the queue and read the event stream until this event completes."""
        joined = self.join(api_name, data, session_hash=session_hash)
        if joined.status_code != 200:
            return Answer(False, error=joined.text, status=joined.status_code)
        event_id = joined.json()["event_id"]
        with self.http.stream("GET", "/gradio_api/queue/data",
                              params={"session_hash": session_hash or self.session_hash}) as stream:
            if stream.status_code != 200:
                return Answer(False, error=stream.read().decode(), status=stream.status_code)
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") != event_id or message.get("msg") != "process_completed":
                    continue
                output = message.get("output") or {}
                if message.get("success"):
                    return Answer(True, data=output.get("data"))
                return Answer(False, error=str(output.get("error")))
        return Answer(False, error="stream ended")

    def read_events(self, event_ids: list[str], timeout: float = 60, *,
                    stop_after_first_progress: bool = False) -> dict[str, Answer]:
        """Read this tab's event stream until those events complete, as the page does for several events at once
        (or, to play a page that goes away, until the first progress message, then close the stream)."""
        answers: dict[str, Answer] = {}
        deadline = time.monotonic() + timeout
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session_hash},
                              timeout=timeout) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if stop_after_first_progress and message.get("msg") == "process_generating":
                    return answers
                if message.get("msg") == "process_completed" and message.get("event_id") in event_ids:
                    output = message.get("output") or {}
                    answers[message["event_id"]] = (Answer(True, data=output.get("data")) if message.get("success")
                                                    else Answer(False, error=str(output.get("error"))))
                if len(answers) == len(event_ids) or time.monotonic() > deadline:
                    break
        return answers

    def upload(self, *files: Path | bytes) -> httpx.Response:
        parts = [("files", (f"p{i}.jpg", f.read_bytes() if isinstance(f, Path) else f, "image/jpeg"))
                 for i, f in enumerate(files)]
        return self.http.post("/gradio_api/upload", files=parts)

    def file_data(self, refs: list[str]) -> list[dict]:
        return [{"path": r, "orig_name": f"p{i}.jpg", "meta": {"_type": "gradio.FileData"}} for i, r in enumerate(refs)]

    # --- the steps of a visit ------------------------------------------------------------------------
    def consent(self) -> Answer:
        return self.call("consent", [True, True, True, None])

    def upload_photos(self, photos: list[Path]) -> Answer:
        response = self.upload(*photos)
        if response.status_code != 200:
            return Answer(False, error=response.text, status=response.status_code)
        return self.call("upload", [self.file_data(response.json()), None])

    def delete_now(self) -> Answer:
        return self.call("delete_now", [None])
