"""The studio on a ZeroGPU Space, as the platform meets it: `spaces.GPU` forks a worker and pickles what crosses.

The server is `python app.py` with SPACES_ZERO_GPU=true, started through tests/app/zerogpu_space.py, which
replaces only what needs a CUDA build of torch and a lent GPU. `spaces` itself runs unchanged: its torch
patching, its start-up, its GPU wrapper with the forked worker and the pickling queues, and its scheduler
client, which talks HTTP to `FakeDeviceApi` below (ZeroGPU's device API: schedule, allow, release). Jobs come
from real Gradio requests (raw HTTP, tests/app/raw_gradio.py) that carry the header a Space's page sends
(X-IP-Token), so the test sees whether the GPU call ran inside the visitor's request: spaces sends that token
to the scheduler only from there.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.app.conftest import ROOT, _free_port, server_environment, start_server, stop_server
from tests.app.raw_gradio import RawBrowser

LAUNCHER = Path(__file__).with_name("zerogpu_space.py")
PHOTOS = ("obama_1.jpg", "obama_4.jpg")


def ip_token(visitor: str) -> str:
    """A token shaped like the one a Space's page sends with each request (a JWT; spaces reads its payload)."""
    payload = base64.urlsafe_b64encode(json.dumps({"visitor": visitor}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{payload}.signature"


class FakeDeviceApi:
    """ZeroGPU's device API as spaces' client calls it (spaces/zero/api.py), granting every request at once and
    writing down each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], float]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                api.calls.append((url.path, params, time.monotonic()))
                if url.path == "/schedule":
                    body = json.dumps({"idle": True, "nvidiaIndex": 0, "nvidiaUUID": "GPU-emulated",
                                       "allowToken": f"allow-{len(api.calls)}"}).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200 if url.path in ("/allow", "/release", "/startup-report") else 404)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, path: str) -> list[dict[str, str]]:
        return [params for p, params, _ in self.calls if p == path]

    def close(self) -> None:
        self.server.shutdown()


def zero_gpu_environment(api: FakeDeviceApi) -> dict[str, str]:
    return {"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api.url,
            "ZEROGPU_OFFLOAD_DIR": str(ROOT / "test-artifacts" / "zerogpu-tensors")}


@pytest.fixture(scope="module")
def device_api():
    api = FakeDeviceApi()
    yield api
    api.close()


@pytest.fixture(scope="module")
def space(tmp_path_factory, device_api):
    # Enough training steps that a Studio job can be cancelled in the middle of its training; enough images per
    # style that a Studio job can ask for more than one ZeroGPU call holds.
    server, proc = start_server(tmp_path_factory, script=LAUNCHER, environ=zero_gpu_environment(device_api),
                                train_steps="30", images_per_style="16")
    yield server
    stop_server(proc)


def visitor_of(space, name: str, address: str) -> RawBrowser:
    visitor = RawBrowser(space.url, address=address)
    visitor.http.headers["x-ip-token"] = ip_token(name)
    visitor.open_page()
    assert visitor.consent().success
    return visitor


def private_call(visitor: RawBrowser, name: str, data: list):
    """A private event (no api page), e.g. Cancel, by the name Gradio gives it."""
    dep = next(d for d in visitor.config["dependencies"] if d.get("api_name") == name)
    return visitor.http.post("/gradio_api/queue/join", json={
        "data": data, "event_data": None, "fn_index": dep["id"],
        "trigger_id": dep["targets"][0][0] if dep["targets"] else None, "session_hash": visitor.session_hash})


def log_of(space) -> str:
    return space.log.read_text(errors="replace")


def test_the_model_is_in_memory_before_spaces_packs_the_weights(space):
    assert re.search(r"ZEROGPU-STARTUP model=ready thread=MainThread", log_of(space)), log_of(space)[-3000:]


def test_an_instant_job_runs_in_the_forked_worker_within_the_visitors_request(space, device_api, faces_dir):
    before = len(device_api.named("/schedule"))
    visitor = visitor_of(space, "instant-visitor", "127.0.9.1")
    try:
        refs = visitor.upload(*[faces_dir / n for n in PHOTOS]).json()
        answer = visitor.call("instant", [visitor.file_data(refs), ["linkedin_classic"], 2, "nothing", None])
        assert answer.success, answer.error
        gallery = answer.data[2] if isinstance(answer.data[2], str) else json.dumps(answer.data[2])
        assert len(re.findall(r"src='data:image/\w+;base64,", gallery)) == 2, answer.data[3]
    finally:
        visitor.close()
    [scheduled] = device_api.named("/schedule")[before:]
    assert scheduled["token"] == ip_token("instant-visitor")  # spaces saw the visitor's request
    allowed = device_api.named("/allow")
    assert allowed and all(int(a["pid"]) != space.pid for a in allowed)  # the GPU was lent to the forked worker
    assert device_api.named("/release")[-1]["fail"] == "false"
    assert "PicklingError" not in log_of(space) and "ZeroGPU worker error" not in log_of(space)


def test_a_studio_job_trains_and_generates_in_the_worker_and_its_headshots_are_sealed(space, device_api, faces_dir):
    before = len(device_api.named("/schedule"))
    visitor = visitor_of(space, "studio-visitor", "127.0.9.2")
    try:
        assert visitor.upload_photos([faces_dir / n for n in PHOTOS]).success
        answer = visitor.call("generate", [["corporate_grey"], 1, None])
        assert answer.success, answer.error
        assert "1 headshot ready" in json.dumps(answer.data), answer.data[1]
        assert re.search(r"media/[\w-]+", json.dumps(answer.data)), "the sealed headshot is served to its owner"
    finally:
        visitor.close()
    [scheduled] = device_api.named("/schedule")[before:]
    assert scheduled["token"] == ip_token("studio-visitor")
    assert 30 <= int(scheduled["durationSeconds"]) <= 300  # studio.zerogpu's plan, within ZeroGPU's limit
    assert device_api.named("/release")[-1]["fail"] == "false"
    assert "PicklingError" not in log_of(space) and "ZeroGPU worker error" not in log_of(space)


def test_cancel_stops_the_worker_in_the_middle_of_training(space, device_api, faces_dir):
    visitor = visitor_of(space, "cancelling-visitor", "127.0.9.3")
    try:
        assert visitor.upload_photos([faces_dir / n for n in PHOTOS]).success
        joined = visitor.join("generate", [["corporate_grey"], 2, None])
        assert joined.status_code == 200
        event_id = joined.json()["event_id"]
        with visitor.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": visitor.session_hash},
                                 timeout=120) as stream:
            cancelled_at, status = None, ""
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                text = json.dumps(message)
                if cancelled_at is None and "Training" in text:  # the worker is training: cancel now
                    assert private_call(visitor, "cancel", [None]).status_code == 200
                    cancelled_at = time.monotonic()
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    status = text
                    break
        assert cancelled_at is not None, "the job never reported training"
        assert "Cancelled" in status, status[-2000:]
        released = [(params, at) for path, params, at in device_api.calls if path == "/release" and at > cancelled_at]
        # spaces releases the GPU once its worker has ended the call: the worker stopped within a few seconds.
        assert released and released[0][1] - cancelled_at < 10, released
    finally:
        visitor.close()
    assert "PicklingError" not in log_of(space)


def test_a_studio_job_longer_than_one_zerogpu_call_is_refused_in_words_before_it_waits(space, device_api, faces_dir):
    from pipeline.styles import load_styles
    from web.style_cards import variant_choices
    every_style = [ref for _, ref in variant_choices(load_styles())]
    scheduled = len(device_api.named("/schedule"))
    visitor = visitor_of(space, "greedy-visitor", "127.0.9.4")
    try:
        assert visitor.upload_photos([faces_dir / n for n in PHOTOS]).success
        answer = visitor.call("generate", [every_style, 16, None])  # 320 images: ~10 min of GPU planned
        assert not answer.success and "Studio mode cannot run on this copy" in answer.error, answer
        assert "choose Instant mode" in answer.error
    finally:
        visitor.close()
    assert len(device_api.named("/schedule")) == scheduled  # no GPU was asked for


def test_an_unpicklable_argument_fails_the_call_at_once_and_gives_the_gpu_back(tmp_path, device_api):
    env = server_environment(tmp_path / "data", _free_port())
    env.update(zero_gpu_environment(device_api))
    before = len(device_api.named("/release"))
    done = subprocess.run([sys.executable, str(LAUNCHER), "--unpicklable"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] == "PicklingError" and outcome["seconds"] < 30, outcome
    assert device_api.named("/release")[before:] == [{"allowToken": device_api.named("/release")[-1]["allowToken"],
                                                      "fail": "true"}]
