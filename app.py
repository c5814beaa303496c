"""The web studio: the server around the page, and how it is started.

    python app.py        serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860)

The page is `web.page` (layout and events), its handlers `web.handlers` (one call into
`pipeline.studio.Studio` each), its markup `web.render`. This module adds what the web needs to
keep the privacy promises (promise 8: results are private), all of it in front of Gradio:

* `privacy.boundary.Boundary` is the only way in: it opens only the routes the page uses, binds
  every Gradio session hash to the browser that first used it, replaces Gradio's upload route
  (uploads are sealed in memory-keyed ciphertext, owned, referenced by opaque ids: a dropped
  upload leaves nothing readable), refuses any input file that is not this browser's upload,
  limits per browser and per address, and sets the security headers.
* Headshots, the ZIP and the data export are decrypted from the vault only when their owner
  fetches them, from `/media/<token>`: an unguessable token bound to the browser's signed
  cookie, so a leaked URL is useless to anyone else. No user file is served by any Gradio route.
* GPU work runs in the studio's own line (`pipeline.jobs.GpuLine`), admitted only for a session
  with consent and sealed photos; the page only watches it.
* Gradio's own check that input files come from its upload folder runs only for a "launched"
  Blocks, which a mounted app never is; `build_app` marks it launched so that check runs too.
"""

import asyncio
import logging
import os
import sys
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Callable

from settings import Settings, SettingsError, apply_privacy_environment, load_settings

if TYPE_CHECKING:  # imported for real only after the environment is set (see main)
    from fastapi import FastAPI

    from pipeline.studio import Studio

log = logging.getLogger("app")
# Downloads at a derived size made at once, for everyone together (each is ~0.1-0.3 s of CPU); see `media_route`.
DERIVED_SIZES_AT_ONCE = 2

# --- the server -----------------------------------------------------------------------------------

def run_on_gpu(studio: "Studio", session_id: str, style_ids: list[str], count: int,
               progress: Callable[[Any], None], cancel: threading.Event, owner_key: bytes | None = None,
               model_id: str | None = None, reuse_adapter: bool = False, instant: bool = False,
               keep: bool = True, photos: list | None = None) -> Any:
    """The GPU part of a job; on a ZeroGPU Space `main` wraps it in `spaces.GPU` (see pipeline/zerogpu.py).

    It runs in the studio's GPU line thread, not in a Gradio request: whether ZeroGPU grants an
    allocation there is not verified on a real ZeroGPU Space. `reuse_adapter`: "more like this",
    generation from the session's trained adapter, no training. `instant`: Instant mode, the face
    adapter on `photos` (screened, in memory), headshots sealed for their owner or (`keep=False`) not stored.
    """
    if instant:
        return studio.instant_from_screened(session_id, list(photos or []), style_ids, count, keep=keep,
                                            owner_key=owner_key, progress=progress, cancel=cancel, model_id=model_id)
    if reuse_adapter:
        return studio.more_like_this(session_id, style_ids, count, progress=progress, cancel=cancel,
                                     owner_key=owner_key, model_id=model_id)
    return studio.make_headshots(session_id, style_ids, count, progress=progress, cancel=cancel, owner_key=owner_key,
                                 model_id=model_id)


def _planned_gpu_seconds(studio: "Studio", session_id: str, style_ids: list[str], count: int, *_: Any,
                         model_id: str | None = None, instant: bool = False, **__: Any) -> float:
    from pipeline.zerogpu import gpu_duration, instant_gpu_duration
    if instant:  # no training: adapter, encoder and the images
        return instant_gpu_duration(len(style_ids) * count, studio.base_model(model_id).family)
    n_photos = max(1, len(studio.vault.blobs(session_id, "photo")))
    return gpu_duration(n_photos, len(style_ids) * count, studio.base_model(model_id).family,
                        train_steps=studio.settings.train_steps)


def build_app(settings: Settings) -> "FastAPI":
    """The whole server: the boundary in front, health, policy and media routes beside the mounted page."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from markdown_it import MarkdownIt
    from starlette.requests import Request

    from pipeline.jobs import GpuLine, JobRecords
    from pipeline.studio import Studio
    from privacy.boundary import Boundary
    from privacy.errors import UserError
    from privacy.memory_sweep import SWEEP_SECONDS, MemorySweep
    from privacy.notice import full_policy
    from privacy.owner_presence import OwnerPresence
    from privacy.rate_limit import Limit
    from privacy.scheduler import start_scheduler, stop_scheduler
    from privacy.uploads import UploadLimits, UploadStore
    from privacy.web_access import CLIENT_COOKIE, ClientIds, MediaGrants, media_type
    from web.handlers import StudioHandlers
    from web.operator_handlers import OperatorHandlers
    from web.operator_page import OPERATOR_JS, OperatorPage
    from web.page import build_demo
    from web.render import CSS, STUDIO_JS, TEAM_JS
    from web.team_handlers import TEAM_MEDIA, TeamHandlers
    from web.team_page import TeamPage
    from web.style_cards import STYLE_CARDS_CSS

    studio = Studio(settings)
    grants, clients = MediaGrants(), ClientIds()
    uploads = UploadStore(settings.gradio_temp_dir / "sealed-uploads", grace_seconds=settings.upload_grace_seconds)
    presence = OwnerPresence()
    records = JobRecords(studio.db)
    # What the last process was running can no longer finish by itself; in queue mode only Instant jobs
    # belong to web processes (the workers own the rest: pipeline.workers). Rows do not say which replica
    # runs an Instant job: another replica's running one reads "interrupted" until it ends and records its end.
    interrupted = records.mark_interrupted(instant_only=bool(settings.queue_url))
    def run_job(job, report):  # `run_on_gpu` looked up at each call: `main` may wrap it for ZeroGPU
        return run_on_gpu(studio, job.session_id, job.style_ids, job.count, report, job.cancel, job.owner_key,
                          model_id=job.model_id, reuse_adapter=job.reuse_adapter, instant=job.instant,
                          keep=job.keep, photos=job.photos)

    # The job runs to its end in the line, whatever happens to the page that asked for it.
    line = local_line = GpuLine(run_job, capacity=settings.queue_size, records=records)
    if settings.queue_url:  # queue mode: studio jobs go to GPU workers; Instant jobs stay in this process's line
        from pipeline.workers import queued_line
        line = queued_line(studio, settings, local=local_line, owner_key_of=presence.key_of)
    metrics = line_metrics(settings, line, interrupted)
    local_line.metrics = metrics  # times the jobs this process runs (a worker times its own)
    studio.erasure.hooks.extend([grants.forget_session, line.cancel_session, presence.forget_session])
    handlers = StudioHandlers(settings, studio, grants=grants, clients=clients, uploads=uploads, line=line,
                              presence=presence)
    team = TeamHandlers(handlers, grants)
    demo = build_demo(settings, handlers, TeamPage(team), OperatorPage(OperatorHandlers(handlers)))

    # An erasure made by another replica (or its scheduler) reaches this one's memory within seconds.
    memory_sweep = MemorySweep(studio.db, holders=[studio.drafts, presence, local_line], hooks=studio.erasure.hooks,
                               identity_hooks=[studio.drafts.forget_session])

    async def forget_sessions_erased_elsewhere() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await asyncio.to_thread(memory_sweep.run_once)
            except Exception as exc:  # the database away for a moment: the next sweep tries again
                log.error("memory sweep failed: %s", type(exc).__name__)

    async def expire_unread_uploads() -> None:
        # An upload no handler came for (a bare API call, a closed tab) is deleted after a short grace.
        while True:
            await asyncio.sleep(max(0.5, settings.upload_grace_seconds / 4))
            uploads.expire()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        uploads.purge()  # sealed under a key that died with the last process: unreadable, now removed
        studio.warm_up.start()  # the page serves at once and tells whether the model can serve (pipeline.model_state)
        started = start_scheduler(studio.erasure)  # runs the start-up sweep first (promise 20)
        log.info("retention scheduler: %s", started.reason)
        expiry = asyncio.get_running_loop().create_task(expire_unread_uploads())
        sweep = asyncio.get_running_loop().create_task(forget_sessions_erased_elsewhere())
        try:
            yield
        finally:
            expiry.cancel()
            sweep.cancel()
            line.close()
            stop_scheduler()
            studio.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    policy_html = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
                   "content='width=device-width, initial-scale=1'><title>Privacy policy — Headshot Studio</title>"
                   "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
                   "line-height:1.5}</style></head><body>" + MarkdownIt().render(full_policy(settings))
                   + "<p><a href='/'>Back to the studio</a></p></body></html>")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    if metrics is not None:  # HEADSHOT_METRICS: counts and durations, no personal data (pipeline.line_metrics)
        @app.get("/metrics")
        def metrics_route() -> Response:
            from prometheus_client import CONTENT_TYPE_LATEST
            return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/privacy")
    def privacy_page() -> HTMLResponse:
        return HTMLResponse(policy_html)

    @app.get("/receipt-key.pem")
    def receipt_key() -> Response:  # publishable: anyone may check a deletion receipt against it
        return Response(studio.erasure.signer.public_pem, media_type="application/x-pem-file")

    @app.get("/studio.js")
    def studio_js() -> Response:  # the page's own script, a file so that the CSP needs no 'unsafe-eval'
        return Response(STUDIO_JS + TEAM_JS + OPERATOR_JS, media_type="text/javascript")

    derived_sizes = threading.BoundedSemaphore(DERIVED_SIZES_AT_ONCE)

    @app.get("/media/{token}")
    def media_route(token: str, request: Request) -> Response:
        grant = grants.resolve(token, clients.check(request.cookies.get(CLIENT_COOKIE)))
        if grant is None:  # unknown token, or not this browser's: the same answer, so nothing leaks
            return Response("Not found.", status_code=404, media_type="text/plain")
        if grant.kind in TEAM_MEDIA:  # a team admin's share, ZIP or CSV: only while the admin's page holds the key
            try:
                data, kind, name = team.media(grant, request.query_params.get("ids"))
            except UserError as exc:
                return Response(exc.message, status_code=410, media_type="text/plain")
            except Exception as exc:
                log.error("media %s failed: %s", grant.kind, type(exc).__name__)
                return Response("Not found.", status_code=404, media_type="text/plain")
            return Response(data, media_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"'}
                            if name else {})
        owner_key = presence.key_of(grant.session_id)  # only while one of the owner's pages is open
        try:
            if grant.kind == "headshot" and "size" in request.query_params:  # one size, made in memory, marked
                # Each derived size is resized, face-cropped and marked again (C2PA + watermark): CPU work that any
                # owner can ask for in a loop, in the thread pool every sync route shares (/healthz included). Found
                # by tests/app/test_photo_set_attacks.py: 48 parallel requests held /healthz past 3 s. At most a few
                # are made at once; the rest are told to retry, at once, without holding a thread.
                if not derived_sizes.acquire(blocking=False):
                    return Response("Many downloads are being prepared right now. Please try again in a moment.",
                                    status_code=429, media_type="text/plain", headers={"Retry-After": "2"})
                try:
                    data, name = studio.headshot_download(grant.session_id, grant.blob_id,
                                                          request.query_params["size"][:8], owner_key)
                finally:
                    derived_sizes.release()
                return Response(data, media_type=media_type(data),
                                headers={"Content-Disposition": f'attachment; filename="{name}"'})
            if grant.kind == "headshot":
                data = studio.headshot_bytes(grant.session_id, grant.blob_id, owner_key)
                return Response(data, media_type=media_type(data))
            if grant.kind == "zip" and "ids" in request.query_params:  # "Download favourites": ids of this session
                wanted = request.query_params["ids"][:4000].split(",")[:500]
                data, name = studio.headshots_zip(grant.session_id, owner_key, blob_ids=wanted), "favourites.zip"
            elif grant.kind == "zip":
                data, name = studio.headshots_zip(grant.session_id, owner_key), "headshots.zip"
            else:
                data, name = studio.export(grant.session_id, owner_key=owner_key), "my-data.zip"
        except UserError as exc:
            # text/plain: the message may quote a few characters of the query (an unknown size); never HTML.
            return Response(exc.message, status_code=410, media_type="text/plain")
        except Exception as exc:  # e.g. the blob was erased a moment ago
            log.error("media %s failed: %s", grant.kind, type(exc).__name__)
            return Response("Not found.", status_code=404, media_type="text/plain")
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]).set(
        # WCAG AA contrast (4.5:1 for text; axe-core checks every step of the journey): the default theme's
        # orange primary (2.8:1 with white), red stop (3.8:1) and grey hints (1.9:1) fall short.
        button_primary_background_fill="#1f3a5f", button_primary_background_fill_hover="#16304f",
        button_primary_text_color="#ffffff", button_primary_border_color="#1f3a5f",
        button_cancel_background_fill="#b42318", button_cancel_background_fill_hover="#912018",
        button_cancel_text_color="#ffffff", button_cancel_border_color="#b42318",
        body_text_color_subdued="#5b5b66", color_accent="#1f3a5f")
    app = gr.mount_gradio_app(
        app, demo, path="/", footer_links=[], run_history=False, show_error=True,
        max_file_size=settings.max_upload_bytes, allowed_paths=[], blocked_paths=blocked_paths(settings),
        enable_monitoring=False, mcp_server=False, ssr_mode=False, pwa=False, css=CSS + STYLE_CARDS_CSS, theme=theme,
        head='<script src="studio.js" defer></script>')
    # A mounted Blocks is never "launched", and Gradio checks that input files come from its upload
    # folder only for launched ones (gradio/processing_utils.py `_check_allowed`): make it check.
    demo.has_launched = True
    limits = UploadLimits(max_file_bytes=settings.max_upload_bytes, max_files=2 * settings.max_photos,
                          max_request_bytes=settings.upload_budget_bytes_per_minute,
                          stall_seconds=settings.upload_stall_seconds, timeout_seconds=settings.upload_timeout_seconds)
    budget = settings.upload_budget_bytes_per_minute
    app.add_middleware(Boundary, clients=clients, uploads=uploads, upload_limits=limits,
                       upload_budget=Limit(capacity=budget, refill_per_second=budget / 60),
                       trusted_proxies=settings.trusted_proxy_networks, frame_ancestors=settings.frame_ancestors,
                       people_per_address=settings.people_per_address)
    return app


def line_metrics(settings: Settings, line: Any, interrupted: int) -> Any:
    """The app's Prometheus metrics (HEADSHOT_METRICS), or None: its line's depth and running jobs at each scrape,
    and the `interrupted` jobs it found at start-up."""
    if not settings.metrics:
        return None
    from pipeline.line_metrics import SCRAPE_CACHE_SECONDS, LineMetrics
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
    from privacy.private_dirs import ensure_private_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_party_loggers()  # at any root level: image parsers and form parsers never log what people send
    try:
        settings = load_settings(environ)
        ensure_private_dir(settings.data_dir)  # 0700, tightened if it exists wider
        ensure_private_dir(settings.gradio_temp_dir)
    except SettingsError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    # Before gradio, huggingface_hub or torch are imported: nothing phones home, and Gradio's
    # cache lives inside the private data root.
    apply_privacy_environment(environ)
    environ["GRADIO_TEMP_DIR"] = str(settings.gradio_temp_dir.resolve())
    from pipeline import zerogpu
    zerogpu.enable(environ)  # on a ZeroGPU Space `spaces` must be imported before CUDA starts
    global run_on_gpu
    run_on_gpu = zerogpu.gpu(environ, duration=_planned_gpu_seconds)(run_on_gpu)
    import uvicorn

    app = build_app(settings)
    zerogpu.startup(environ)  # spaces hooks Blocks.launch, which a mounted app never calls
    host = environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(environ.get("GRADIO_SERVER_PORT", "7860"))
    # No access log: no IPs kept. No proxy headers: uvicorn would believe X-Forwarded-For from any local
    # peer; privacy.boundary believes it only from HEADSHOT_TRUSTED_PROXIES.
    print(f"Headshot Studio: open http://{host}:{port} in your browser (base model {settings.base_model!r} "
          "loading in the background; the page shows its state).", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
