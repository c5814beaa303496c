"""The web studio: the server around the page, and how it is started.

    python app.py        serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860)

The page is `web.page` (layout and events), its handlers `web.handlers` (one call into
`studio.service.Studio` each), its markup `web.render`. This module adds what the web needs to
keep the privacy promises (promise 8: results are private), all of it in front of Gradio:

* `web.boundary.middleware.Boundary` is the only way in: it opens only the routes the page uses, binds
  every Gradio session hash to the browser that first used it, replaces Gradio's upload route
  (uploads are sealed in memory-keyed ciphertext, owned, referenced by opaque ids: a dropped
  upload leaves nothing readable), refuses any input file that is not this browser's upload,
  limits per browser and per address, and sets the security headers.
* Headshots, the ZIP and the data export are decrypted from the vault only when their owner
  fetches them, from `/media/<token>`: an unguessable token bound to the browser's signed
  cookie, so a leaked URL is useless to anyone else. No user file is served by any Gradio route.
* GPU work runs in the studio's own line (`studio.jobs.GpuLine`), admitted only for a session
  with consent and sealed photos; the page only watches it. On a ZeroGPU Space the page following a
  job runs it, in its own request, when its turn comes: `spaces.GPU` (studio/zerogpu.py) charges
  the visitor of that request and runs the call in a forked worker (studio/gpu_call.py).
* Gradio's own check that input files come from its upload folder runs only for a "launched"
  Blocks, which a mounted app never is; `build_app` marks it launched so that check runs too.
"""

import asyncio
import logging
import os
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from settings import Settings, SettingsError, apply_privacy_environment, load_settings

if TYPE_CHECKING:  # imported for real only after the environment is set (see main)
    from fastapi import FastAPI

    from studio.service import Studio

log = logging.getLogger("app")

# --- the server -----------------------------------------------------------------------------------

@dataclass
class _Parts:
    """What the server is made of, assembled once by `_assemble`."""

    studio: "Studio"
    grants: Any
    clients: Any
    uploads: Any
    presence: Any
    line: Any  # where the page's jobs go: this process's GPU line, or the queue to GPU workers
    listening: Any  # the pages reading their events: written by the Boundary, read by the handlers
    metrics: Any
    team: Any
    demo: Any
    memory_sweep: Any
    consented: Any  # the browsers whose page gave consent: added by the handlers, asked by the Boundary
    limiters: Any  # where per-address limits are kept: this process, or queue mode's Redis (shared_limits)
    addresses: Any  # the address hashes those limits are keyed by


def build_app(settings: Settings, *, zero_gpu_call: Callable | None = None) -> "FastAPI":
    """The whole server: the boundary in front, health, policy and media routes beside the mounted page.

    `zero_gpu_call`: on a ZeroGPU Space, `studio.gpu_call.stream` under `spaces.GPU` (see `main`); the jobs
    then run through it, each in the request of a page following it. None: in the GPU line's own thread."""
    import gradio as gr
    from fastapi import FastAPI

    from web.boundary.middleware import Boundary
    from web.boundary.rate_limit import Limit
    from web.boundary.uploads import UploadLimits
    from web.page import studio_theme
    from web.render import CSS
    from web.style_cards import STYLE_CARDS_CSS
    from web.visitor.flow import FLOW_CSS

    parts = _assemble(settings, zero_gpu_call)
    app = FastAPI(lifespan=_lifespan(settings, parts), docs_url=None, redoc_url=None, openapi_url=None)
    _add_routes(app, settings, parts)
    app = gr.mount_gradio_app(
        app, parts.demo, path="/", footer_links=[], run_history=False, show_error=True,
        max_file_size=settings.max_upload_bytes, allowed_paths=[], blocked_paths=blocked_paths(settings),
        enable_monitoring=False, mcp_server=False, ssr_mode=False, pwa=False, css=CSS + STYLE_CARDS_CSS + FLOW_CSS,
        theme=studio_theme(), head='<script src="studio.js" defer></script>')
    # A mounted Blocks is never "launched", and Gradio checks that input files come from its upload
    # folder only for launched ones (gradio/processing_utils.py `_check_allowed`): make it check.
    parts.demo.has_launched = True
    upload_limits = UploadLimits(max_file_bytes=settings.max_upload_bytes, max_files=2 * settings.max_photos,
                          max_request_bytes=settings.upload_budget_bytes_per_minute,
                          stall_seconds=settings.upload_stall_seconds, timeout_seconds=settings.upload_timeout_seconds)
    budget = settings.upload_budget_bytes_per_minute
    app.add_middleware(Boundary, clients=parts.clients, uploads=parts.uploads, upload_limits=upload_limits,
                       upload_budget=Limit(capacity=budget, refill_per_second=budget / 60),
                       trusted_proxies=settings.trusted_proxy_networks, frame_ancestors=settings.frame_ancestors,
                       people_per_address=settings.people_per_address, listening=parts.listening,
                       consented=parts.consented, limiters=parts.limiters, addresses=parts.addresses)
    return app


def _assemble(settings: Settings, zero_gpu_call: Callable | None = None) -> _Parts:
    """The studio, its GPU line (or queue), the page's handlers and the page, wired to each other."""
    from privacy.lifecycle.memory_sweep import MemorySweep
    from privacy.store.owner_presence import OwnerPresence
    from studio import gpu_call
    from studio.jobs import GpuLine, JobRecords
    from studio.service import Studio
    from web.boundary.fair_share import ConsentedBrowsers
    from web.boundary.middleware import ListeningPages
    from web.boundary.uploads import UploadStore
    from web.boundary.web_access import ClientIds, MediaGrants
    from web.handlers import StudioHandlers
    from web.operator_handlers import OperatorHandlers
    from web.operator_page import OperatorPage
    from web.page import build_demo
    from web.team_handlers import TeamHandlers
    from web.team_page import TeamPage

    studio = Studio(settings)
    grants, clients = MediaGrants(), ClientIds()
    uploads = UploadStore(settings.gradio_temp_dir / "sealed-uploads", grace_seconds=settings.upload_grace_seconds,
                          people=settings.people_per_address)
    consented = ConsentedBrowsers()
    limiters, addresses = address_limits(settings)
    presence = OwnerPresence()
    records = JobRecords(studio.db)
    # What the last process was running can no longer finish by itself; in queue mode only Instant jobs
    # belong to web processes (the workers own the rest: studio.workers). Rows do not say which replica
    # runs an Instant job: another replica's running one reads "interrupted" until it ends and records its end.
    interrupted = records.mark_interrupted(instant_only=bool(settings.queue_url))

    gpu_call.serve(studio)  # where the GPU call finds the studio: here, and in a worker forked from here (ZeroGPU)

    def run_job(job, report):
        if zero_gpu_call is not None:  # in a forked worker: only picklable arguments cross (studio.gpu_call)
            return gpu_call.follow(zero_gpu_call, gpu_call.GpuOrder.of(job), report, job.cancel)
        return gpu_call.run(gpu_call.GpuOrder.of(job), report, job.cancel)

    # The job runs to its end in the line, whatever happens to the page that asked for it; on ZeroGPU a page
    # following it runs it, in its request, when its turn comes (studio.jobs).
    line = local_line = GpuLine(run_job, capacity=settings.queue_size, records=records,
                                in_request=zero_gpu_call is not None)
    if settings.queue_url:  # queue mode: studio jobs go to GPU workers; Instant jobs stay in this process's line
        from studio.workers import queued_line
        line = queued_line(studio, settings, local=local_line, owner_key_of=presence.key_of)
    metrics = line_metrics(settings, line, interrupted)
    local_line.metrics = metrics  # times the jobs this process runs (a worker times its own)
    if line is not local_line:
        line.metrics = metrics  # and counts the dead workers' jobs its own reaper decides (studio.reaper)
    studio.erasure.hooks.extend([grants.forget_session, line.cancel_session, presence.forget_session])
    listening = ListeningPages()
    handlers = StudioHandlers(settings, studio, grants=grants, clients=clients, uploads=uploads, line=line,
                              presence=presence, listening=listening, consented=consented, limiters=limiters)
    team = TeamHandlers(handlers, grants)
    demo = build_demo(settings, handlers, TeamPage(team), OperatorPage(OperatorHandlers(handlers)))
    # An erasure made by another replica (or its scheduler) reaches this one's memory within seconds.
    memory_sweep = MemorySweep(studio.db, holders=[studio.drafts, presence, local_line], hooks=studio.erasure.hooks,
                               identity_hooks=[studio.drafts.forget_session])
    return _Parts(studio, grants, clients, uploads, presence, line, listening, metrics, team, demo, memory_sweep,
                  consented, limiters, addresses)


def address_limits(settings: Settings) -> tuple[Callable, Any]:
    """Where per-address limits are kept, and the address hashes they are keyed by.

    In queue mode the app may run as several replicas sharing one Redis: the limits are kept there, so an address
    gets its budget once, not once per replica, and its hash is keyed by a secret derived from the master key that
    every replica shares (one address, one key everywhere). Otherwise: this process, with a salt of its own."""
    from web.boundary.client_address import AddressKeys
    from web.boundary.shared_limits import in_process, shared_limiters
    if not settings.queue_url:
        return in_process, AddressKeys()
    import hashlib
    import hmac

    from privacy.store.master_key import load_master_key
    salt = hmac.new(load_master_key(settings.master_key, settings.key_file), b"address limits",
                    hashlib.sha256).digest()
    return shared_limiters(settings.queue_url), AddressKeys(salt)


def _lifespan(settings: Settings, parts: _Parts) -> Callable:
    """Start-up and shut-down, and the server's own background loops."""
    from privacy.lifecycle.memory_sweep import SWEEP_SECONDS
    from privacy.lifecycle.scheduler import start_scheduler, stop_scheduler

    async def forget_sessions_erased_elsewhere() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await asyncio.to_thread(parts.memory_sweep.run_once)
            except Exception as exc:  # the database away for a moment: the next sweep tries again
                log.error("memory sweep failed: %s", type(exc).__name__)

    async def expire_unread_uploads() -> None:
        # An upload no handler came for (a bare API call, a closed tab) is deleted after a short grace.
        while True:
            await asyncio.sleep(max(0.5, settings.upload_grace_seconds / 4))
            parts.uploads.expire()

    @asynccontextmanager
    async def lifespan(_app: Any):
        studio = parts.studio
        parts.uploads.purge()  # sealed under a key that died with the last process: unreadable, now removed
        studio.warm_up.start()  # the page serves at once and tells whether the model can serve (studio.model_state)
        started = start_scheduler(studio.erasure)  # runs the start-up sweep first (promise 20)
        log.info("retention scheduler: %s", started.reason)
        loops = [asyncio.get_running_loop().create_task(loop())
                 for loop in (expire_unread_uploads, forget_sessions_erased_elsewhere)]
        try:
            yield
        finally:
            for task in loops:
                task.cancel()
            parts.line.close()
            stop_scheduler()
            studio.close()

    return lifespan


def _add_routes(app: "FastAPI", settings: Settings, parts: _Parts) -> None:
    """The routes beside the page: health, metrics, the privacy policy, the receipt key, the page's script, media."""
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from markdown_it import MarkdownIt

    from privacy.records.notice import full_policy
    from web.media import MediaRoute
    from web.operator_page import OPERATOR_JS
    from web.render import STUDIO_JS, TEAM_JS
    from web.visitor.flow import FLOW_JS

    policy_html = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
                   "content='width=device-width, initial-scale=1'><title>Privacy policy — Headshot Studio</title>"
                   "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
                   "line-height:1.5}</style></head><body>" + MarkdownIt().render(full_policy(settings))
                   + "<p><a href='/'>Back to the studio</a></p></body></html>")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    if parts.metrics is not None:  # HEADSHOT_METRICS: counts and durations, no personal data (studio.line_metrics)
        @app.get("/metrics")
        def metrics_route() -> Response:
            from prometheus_client import CONTENT_TYPE_LATEST
            return Response(parts.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/privacy")
    def privacy_page() -> HTMLResponse:
        return HTMLResponse(policy_html)

    @app.get("/receipt-key.pem")
    def receipt_key() -> Response:  # publishable: anyone may check a deletion receipt against it
        return Response(parts.studio.erasure.signer.public_pem, media_type="application/x-pem-file")

    @app.get("/studio.js")
    def studio_js() -> Response:  # the page's own script, a file so that the CSP needs no 'unsafe-eval'
        return Response(STUDIO_JS + FLOW_JS + TEAM_JS + OPERATOR_JS, media_type="text/javascript")

    app.get("/media/{token}")(MediaRoute(parts.studio, parts.grants, parts.clients, parts.presence, parts.team,
                                         people=settings.people_per_address))


def line_metrics(settings: Settings, line: Any, interrupted: int) -> Any:
    """The app's Prometheus metrics (HEADSHOT_METRICS), or None: its line's depth and running jobs at each scrape,
    and the `interrupted` jobs it found at start-up."""
    if not settings.metrics:
        return None
    from studio.line_metrics import SCRAPE_CACHE_SECONDS, LineMetrics
    metrics = LineMetrics(line.depth, line.running, cache_seconds=SCRAPE_CACHE_SECONDS)
    metrics.interrupted.inc(interrupted)
    return metrics


def blocked_paths(settings: Settings) -> list[str]:
    """Everything in the data root except Gradio's upload folder (where the sealed uploads wait)."""
    root = settings.data_dir.resolve()
    temp = settings.gradio_temp_dir.resolve()
    paths = {settings.blob_dir.resolve(), settings.key_file.resolve().parent, root / "studio.db"}
    if root.is_dir():
        paths.update(p.resolve() for p in root.iterdir() if p.resolve() != temp)
    return sorted(str(p) for p in paths)


def main(environ: "dict[str, str] | None" = None) -> int:
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    from privacy.log_hygiene import quiet_third_party_loggers
    from privacy.store.private_dirs import ensure_private_dir
    from startup_checks import check_before_serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_party_loggers()  # at any root level: image parsers and form parsers never log what people send
    try:
        settings = load_settings(environ)
        check_before_serving(settings)  # data dir, master key, database, face adapter: usable here, or exit 2
        ensure_private_dir(settings.gradio_temp_dir)
    except SettingsError as exc:
        print(f"Configuration error: {exc} See docs/CONFIGURATION.md.", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"Configuration error: HEADSHOT_DATA_DIR={settings.data_dir} cannot hold the studio's files "
              f"({exc.strerror or type(exc).__name__}).", file=sys.stderr)
        return 2
    # Before gradio, huggingface_hub or torch are imported: nothing phones home, and Gradio's
    # cache lives inside the private data root.
    apply_privacy_environment(environ)
    environ["GRADIO_TEMP_DIR"] = str(settings.gradio_temp_dir.resolve())
    from studio import zerogpu
    zerogpu.enable(environ)  # on a ZeroGPU Space `spaces` must be imported before CUDA starts
    import uvicorn

    from studio import gpu_call

    host = environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(environ.get("GRADIO_SERVER_PORT", "7860"))
    zero_gpu_call = None
    if zerogpu.on_zero_gpu(environ):
        zero_gpu_call = zerogpu.gpu(environ, duration=gpu_call.planned_seconds)(gpu_call.stream)
    try:
        app = build_app(settings, zero_gpu_call=zero_gpu_call)
    except SettingsError as exc:  # found while opening the stores (a key file changed since the check, say)
        print(f"Configuration error: {exc} See docs/CONFIGURATION.md.", file=sys.stderr)
        return 2
    if zero_gpu_call is not None:
        # spaces packs the weights it finds in memory at start-up, and emulates CUDA in this thread only:
        # the base model is loaded here, now, not by the background warm-up.
        gpu_call.studio().warm_up.load_here()
    zerogpu.startup(environ, server_port=port)  # spaces hooks Blocks.launch, which a mounted app never calls
    # No access log: no IPs kept. No proxy headers: uvicorn would believe X-Forwarded-For from any local
    # peer; web.boundary.middleware believes it only from HEADSHOT_TRUSTED_PROXIES.
    print(f"Headshot Studio: open http://{host}:{port} in your browser (base model {settings.base_model!r} "
          "loading in the background; the page shows its state).", flush=True)
    # Half-sent request headers are closed after HEADSHOT_HEADER_TIMEOUT_SECONDS (uvicorn has no setting for it).
    from web.boundary.header_timeout import protocol_with_header_timeout
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                server_header=False, http=protocol_with_header_timeout(settings.header_timeout_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
