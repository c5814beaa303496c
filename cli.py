"""Command-line entry points: the same functions the app calls, without a browser.

    python cli.py check PHOTO... [--json]        screen photos exactly as the app would
    python cli.py run --photos DIR --style NAME --out DIR --consent [--base MODEL] [--mode instant]
    python cli.py audit [--json]                 residue audit of the data root
    python cli.py verify-receipt FILE            check a deletion receipt's signature
    python cli.py verify IMAGE [--json]          does an image carry our provenance?
    python cli.py docs [--check]                 write docs/CONFIGURATION.md and PRIVACY.md from the code
    python cli.py worker [--name NAME]           queue mode: run studio jobs from HEADSHOT_QUEUE_URL (one per GPU)
    python cli.py team create --name NAME [--base-url URL] [--json]   a team, and its admin link (shown once)
    python cli.py operator-link [--base-url URL] [--json] [--revoke]  the operator's link to create teams on the web

Exit status 0 means success / clean / acceptable; 1 means the answer is "no" (for
verify-receipt: INVALID, or UNVERIFIED when no deployment public key was available to check
the signer against); 2 means the command could not run (bad usage, unreadable input, bad settings).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from settings import SettingsError, apply_privacy_environment, load_settings

apply_privacy_environment()

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


# --- check (owner: ingest/screening) ---------------------------------------------------
def _register_check(sub) -> None:
    p = sub.add_parser("check", help="screen photos exactly as the app would")
    p.add_argument("photos", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    """Screen the photos with the app's own limits and rules; exit 0 only if the set is usable."""
    from privacy.intake.ingest import IngestLimits
    from privacy.intake.screening import ScreeningRules, screen_uploads

    settings = load_settings()
    try:
        files = [path.read_bytes() for path in args.photos]
    except OSError as exc:
        print(f"Cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    report = screen_uploads(files, IngestLimits.from_settings(settings), ScreeningRules.from_settings(settings))
    if args.json:
        print(report.to_json())
    else:
        for item, path in zip(report.items, args.photos):
            print(f"{item.index}. {path.name}: " + ("accepted" if item.accepted else f"{item.code}: {item.message}"))
        for problem in report.set_problems:
            print(f"set: {problem.code}: {problem.message}")
        print("The set can be used." if report.acceptable else "The set cannot be used yet.")
    return EXIT_OK if report.acceptable else EXIT_NO
# --- end check ---------------------------------------------------------------------------


# --- verify (owner: provenance) --------------------------------------------------------
def _register_verify(sub) -> None:
    p = sub.add_parser("verify", help="report whether an image carries our provenance")
    p.add_argument("image", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    """Exit 0 only when the image carries our provenance (trusted C2PA or our watermark)."""
    from privacy.marks.provenance import Provenance

    try:
        data = args.image.read_bytes()
    except OSError:
        print("Cannot read that file.", file=sys.stderr)
        return EXIT_USAGE
    # signing=False: verifying reads the trust anchor only; it never creates or renews keys.
    report = Provenance.from_settings(load_settings(), signing=False).verify_image(data)
    if args.json:
        print(report.to_json())
    else:
        print("\n".join(report.summary()))
    if not report.readable:
        return EXIT_USAGE
    return EXIT_OK if report.is_ours else EXIT_NO
# --- end verify --------------------------------------------------------------------------


# --- run (owner: lead) -----------------------------------------------------------------
def _register_run(sub) -> None:
    p = sub.add_parser("run", help="the whole flow headless: screen, train, generate, score")
    p.add_argument("--photos", type=Path, required=True, help="folder of photos of one person")
    p.add_argument("--style", required=True, action="append", help="style id (repeatable)")
    p.add_argument("--base", help="base model (hub id, local dir, tiny-sd, tiny-sdxl); default: HEADSHOT_BASE_MODEL")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--count", type=int, default=None, help="headshots per style (default: HEADSHOT_IMAGES_PER_STYLE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("studio", "instant"), default="studio",
                   help="studio: train a LoRA on the photos (minutes); instant: a face adapter, no training, "
                        "nothing of the photos stored (seconds; HEADSHOT_FACE_ADAPTER)")
    p.add_argument("--consent", action="store_true",
                   help="I confirm these are photos of me, I am 18 or older, and I agree to the processing")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    """Headless run in a private, temporary vault that is erased before the command returns."""
    import dataclasses
    import tempfile

    from errors import UserError
    from privacy.lifecycle.consent import Attestations
    from studio.service import Studio

    if not args.consent:
        print("Refused: pass --consent to confirm that these are photos of you, that you are 18 or older, "
              "and that you agree to the processing described in PRIVACY.md. Nothing was read.", file=sys.stderr)
        return EXIT_USAGE
    photo_files = sorted(p for p in args.photos.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if args.photos.is_dir() else []
    if not photo_files:
        print("No photos found in the --photos folder.", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="headshot-run-") as private_dir:
        settings = dataclasses.replace(settings, data_dir=Path(private_dir), database_url="",
                                       base_model=args.base or settings.base_model)
        studio = Studio(settings)
        session_id = studio.start_session()
        try:
            studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
            if args.mode == "instant":
                # keep=False: the headshots come back marked and the (temporary) vault never holds them.
                run = studio.instant.instant_headshots(session_id, [p.read_bytes() for p in photo_files], args.style,
                                               args.count or settings.images_per_style, keep=False,
                                               seed=args.seed, progress=_print_progress)
                kept = iter(shot.data for shot in run.unstored)
                _write_run(args.out, studio, run, lambda: next(kept))
                return _wrote(len(run.unstored), args.out, "nothing of the photos was stored")
            report = studio.upload(session_id, [p.read_bytes() for p in photo_files])
            for item, path in zip(report.items, photo_files):
                verdict = "accepted" if item.accepted else f"rejected {item.code}: {item.message}"
                print(f"{path.name}: {verdict}", file=sys.stderr)
            if not report.acceptable:
                print("The photo set cannot be used: " + "; ".join(p.message for p in report.set_problems),
                      file=sys.stderr)
                return EXIT_NO
            run = studio.make_headshots(session_id, args.style, args.count or settings.images_per_style,
                                        seed=args.seed, progress=_print_progress)
            delivered = iter(run.delivered)
            _write_run(args.out, studio, run, lambda: studio.headshot_bytes(session_id, next(delivered).blob_id))
        except UserError as exc:
            print(f"{exc.message} ({exc.code})", file=sys.stderr)
            return EXIT_NO
        finally:
            receipt = studio.delete_now(session_id)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "deletion_receipt.json").write_bytes(receipt.to_json())
            studio.close()
    return _wrote(len(run.delivered), args.out, "the private vault was erased")


def _wrote(count: int, out: Path, what: str) -> int:
    print(f"Wrote {count} headshots to {out}; {what} (receipt: {out / 'deletion_receipt.json'}).")
    return EXIT_OK


def _print_progress(p) -> None:
    eta = f"  eta {p.eta_seconds:.0f}s" if p.eta_seconds is not None else ""
    print(f"  {p.stage}: {p.fraction:4.0%}{eta}  {p.detail}", file=sys.stderr)


def _write_run(out: Path, studio, run, next_kept: Callable[[], bytes]) -> None:
    """Kept headshots (`next_kept()` gives each one's marked bytes, in order); held-back ones (marked too) in
    held_back/; a JSON report of every output."""
    (out / "held_back").mkdir(parents=True, exist_ok=True)
    entries, demo = [], studio.base_model().is_demo
    for index, output in enumerate(run.all_outputs, start=1):
        name = f"{index:02d}_{output.style_id}_seed{output.seed}.jpg"
        if output.kept:
            data = next_kept()
            path = out / name
        else:
            data = studio.provenance.mark_headshot(output.image, style_id=output.style_id,
                                                   demo=demo)
            path = out / "held_back" / name
        path.write_bytes(data)
        entries.append({"file": str(path.relative_to(out)), "style": output.style_id, "seed": output.seed,
                        "likeness": round(float(output.likeness), 4), "unsafe": round(float(output.unsafe), 4),
                        "kept": output.kept, "held_back_reason": output.reason,
                        "demo": demo})
    (out / "report.json").write_text(json.dumps({"headshots": entries}, indent=2))
# --- end run -----------------------------------------------------------------------------


# --- audit (owner: retention) -----------------------------------------------------------
def _register_audit(sub) -> None:
    p = sub.add_parser("audit", help="residue audit of the data root, temp dirs and database files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--extra-dir", action="append", type=Path, default=[],
                   help="another temp/cache directory to scan (repeatable)")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args) -> int:
    import time

    from privacy.lifecycle.residue import audit_residue
    from privacy.store.database import Database

    settings = load_settings()
    db = Database(settings.database)
    try:
        # The audit needs no key: it reads the index and the files, and never decrypts anything.
        report = audit_residue(settings, db, None, time.time(), extra_dirs=args.extra_dir)
    finally:
        db.dispose()
    print(report.to_json() if args.json else report.summary())
    return EXIT_OK if report.clean else EXIT_NO
# --- end audit ---------------------------------------------------------------------------


# --- verify-receipt (owner: retention) -------------------------------------------------
def _register_verify_receipt(sub) -> None:
    p = sub.add_parser("verify-receipt", help="check a deletion receipt's signature")
    p.add_argument("file", type=Path)
    p.add_argument("--public-key", type=Path, default=None,
                   help="the deployment's public key PEM (default: DATA_DIR/keys/receipt_public.pem if present)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_receipt)


def cmd_verify_receipt(args) -> int:
    """VALID (exit 0) only against the deployment's key; a receipt checked against its own key is UNVERIFIED (1)."""
    from privacy.records.receipts import PUBLIC_KEY_NAME, UNVERIFIED, key_dir, verify_receipt

    try:
        data = args.file.read_bytes()
        key_path = args.public_key or key_dir(load_settings()) / PUBLIC_KEY_NAME
        public_key = key_path.read_bytes() if (args.public_key or key_path.exists()) else None
    except OSError as exc:
        print(f"Cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    check = verify_receipt(data, public_key)
    if args.json:
        _print_json({"status": check.status, "valid": check.valid, "reason": check.reason, "key": check.key})
    else:
        print(f"{check.status.upper()}: {check.reason}")
        if check.status == UNVERIFIED:
            # Fail closed: a forger signs with their own key and embeds it, so self-consistency proves nothing.
            print("No deployment public key was found (DATA_DIR/keys/receipt_public.pem). Pass --public-key "
                  "with the studio's published receipt_public.pem to check who signed it; the key inside this "
                  f"receipt has fingerprint {check.receipt['public_key_fingerprint']}.")
    return EXIT_OK if check.valid else EXIT_NO
# --- end verify-receipt ------------------------------------------------------------------


# --- docs (owner: ship) ----------------------------------------------------------------
CONFIGURATION_DOC = Path("docs/CONFIGURATION.md")
PRIVACY_DOC = Path("PRIVACY.md")


def configuration_doc() -> str:
    """docs/CONFIGURATION.md: the settings table from settings.py, under a do-not-edit header."""
    from settings import PRIVACY_ENVIRONMENT, configuration_reference

    platform = [("GRADIO_SERVER_NAME", "`0.0.0.0` in the Docker image", "Interface Gradio listens on."),
                ("GRADIO_SERVER_PORT", "`7860`", "Port Gradio listens on (the Docker HEALTHCHECK follows it)."),
                ("HF_HOME", "`/models` in the Docker image",
                 "Cache of downloaded base-model weights (not personal data)."),
                ("TMPDIR", "`/tmp`", "Scratch files of the libraries; mount a tmpfs there (`--tmpfs /tmp`)."),
                ("SPACES_ZERO_GPU", "set by Hugging Face",
                 "`true` on a ZeroGPU Space: GPU work then runs under `spaces.GPU`.")]
    platform += [(name, f"`{value}`", "Set before any library loads so nothing phones home; do not change.")
                 for name, value in PRIVACY_ENVIRONMENT.items()]
    rows = "\n".join(f"| `{name}` | {default} | {meaning} |" for name, default, meaning in platform)
    return ("# Configuration reference\n\n"
            "<!-- Generated by `python cli.py docs` from settings.py; edit the settings, not this file. -->\n\n"
            "Every setting is an environment variable, read once at start-up. An unknown `HEADSHOT_*` name "
            "or a bad value, and a value that cannot work on this machine (a data directory it cannot write, "
            "a master key of the wrong length, a database it cannot reach, a face-adapter directory without "
            "the adapter), stops the app before it serves anything: `python app.py` and the Docker entrypoint "
            "exit with status 2 and one sentence naming the variable. Retention periods and the contact address "
            "are also shown to people in the privacy notice, from these same values.\n\n" + configuration_reference()
            + "\n## Variables of the platform and libraries\n\n| variable | default | meaning |\n| --- | --- | --- |\n"
            + rows + "\n")


def privacy_doc() -> str:
    """PRIVACY.md: the full policy for the default settings, from the same source as the in-app notice."""
    from privacy.records.notice import full_policy

    return full_policy(load_settings({}))


def _register_docs(sub) -> None:
    p = sub.add_parser("docs", help="write docs/CONFIGURATION.md and PRIVACY.md from the code")
    p.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    p.set_defaults(func=cmd_docs)


def cmd_docs(args) -> int:
    root = Path(__file__).resolve().parent
    stale = []
    for relative, text in ((CONFIGURATION_DOC, configuration_doc()), (PRIVACY_DOC, privacy_doc())):
        path = root / relative
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(relative))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check:
        print(f"Out of date: {', '.join(stale)}; run `python cli.py docs`." if stale else "Documents are up to date.")
        return EXIT_NO if stale else EXIT_OK
    print(f"Wrote {', '.join(stale)}." if stale else "Documents were already up to date.")
    return EXIT_OK
# --- end docs ----------------------------------------------------------------------------


# --- team (owner: teams) ----------------------------------------------------------------
DEFAULT_BASE_URL = "http://127.0.0.1:7860"


def _register_team(sub) -> None:
    p = sub.add_parser("team", help="teams: one brand look for a company, shared headshots only the admin opens")
    team_sub = p.add_subparsers(dest="team_command", required=True)
    create = team_sub.add_parser("create", help="create a team and print its admin link (shown once, never stored)")
    create.add_argument("--name", required=True, help="the team's name, e.g. the company's")
    create.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help=f"the studio's address as people reach it (default {DEFAULT_BASE_URL})")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_team_create)


def cmd_team_create(args) -> int:
    """The admin link is printed once: the studio keeps only a locator of its key, so it cannot show it again."""
    from errors import UserError
    from privacy.records.notice import policy_version
    from privacy.records.receipts import load_receipt_signer
    from privacy.store.database import Database
    from privacy.teams.team_shares import share_dir
    from privacy.teams.teams import Teams

    settings = load_settings()
    db = Database(settings.database)
    try:
        teams = Teams(db, share_dir(settings.data_dir), load_receipt_signer(settings), policy_version(settings))
        team = teams.create(args.name)
    except UserError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_USAGE
    finally:
        db.dispose()
    link = team.admin_link(args.base_url)
    if args.json:
        _print_json({"team_id": team.team_id, "name": team.name, "admin_link": link, "admin_code": team.admin_key.code})
    else:
        print(f"Team {team.name!r} created.\n\nAdmin link: {link}\nAdmin code: {team.admin_key.code}\n\n"
              "Keep this link safe and give it only to the team's admin: it is shown this once. The studio keeps "
              "no copy of its key, so it cannot show it again or recover it, and without it nobody (the studio "
              "included) can open what members share with the team.")
    return EXIT_OK


def _register_operator_link(sub) -> None:
    p = sub.add_parser("operator-link", help="mint the operator's link (creates teams from the web page; shown once, "
                                             "replaces any earlier one), or --revoke it")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL,
                   help=f"the studio's address as the operator reaches it (default {DEFAULT_BASE_URL})")
    p.add_argument("--revoke", action="store_true", help="forget the operator key: no operator link opens anything")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_operator_link)


def cmd_operator_link(args) -> int:
    """The link is printed once: the studio keeps only a verifier of its key (privacy.teams.operator_keys)."""
    from privacy.store.database import Database
    from privacy.teams.operator_keys import OperatorKeys

    db = Database(load_settings().database)
    try:
        keys = OperatorKeys(db)
        if args.revoke:
            revoked = keys.revoke()
            if args.json:
                _print_json({"revoked": revoked})
            else:
                print("The operator key is revoked: no operator link opens anything now." if revoked
                      else "There was no operator key to revoke.")
            return EXIT_OK
        key = keys.mint()
    finally:
        db.dispose()
    link = key.link(args.base_url)
    if args.json:
        _print_json({"operator_link": link, "operator_code": key.code})
    else:
        print(f"Operator link: {link}\n\nIt opens the Operator tab, which creates teams and nothing else. It is shown "
              "this once: the studio keeps only a verifier of its key. Any earlier operator link stopped working now; "
              "`python cli.py operator-link --revoke` stops this one.")
    return EXIT_OK
# --- end team ----------------------------------------------------------------------------


# --- worker (owner: studio.workers) ------------------------------------------------------
def _register_worker(sub) -> None:
    p = sub.add_parser("worker", help="queue mode: run studio jobs from HEADSHOT_QUEUE_URL, one at a time")
    p.add_argument("--name", default=None, help="this worker's name in claims and logs (default: host-pid)")
    p.set_defaults(func=cmd_worker)


def cmd_worker(args) -> int:
    """A GPU worker: one process per GPU, one job at a time, until stopped (SIGTERM: after the current job)."""
    import logging
    import threading

    from privacy.log_hygiene import quiet_third_party_loggers

    settings = load_settings()
    if not settings.queue_url:
        print("Configuration error: HEADSHOT_QUEUE_URL is not set; a worker needs the queue the app enqueues on.",
              file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_party_loggers()
    # Celery sets the root logger to its --loglevel (WARNING: its INFO lines name tasks); ours say job ids only.
    logging.getLogger("studio.workers").setLevel(logging.INFO)
    from studio.service import Studio
    from studio.worker_health import WorkerMetrics, database_answers, serve_health
    from studio.workers import QUEUE_NAME, TASK_NAME, JobWorker, broker_job_ids, celery_app, run_studio_job, worker_name

    studio = Studio(settings)
    broker = celery_app(settings.queue_url, visibility_seconds=settings.job_visibility_seconds)
    name = args.name or worker_name()
    worker = JobWorker(studio, lambda job, progress: run_studio_job(studio, job, progress),
                       enqueue=lambda job_id: broker.send_task(TASK_NAME, args=[job_id], queue=QUEUE_NAME),
                       name=name, stale_seconds=settings.worker_stale_seconds, attempts=settings.job_attempts,
                       in_broker=lambda: broker_job_ids(broker))
    consuming = threading.Event()
    if settings.worker_port:
        worker.metrics = WorkerMetrics(studio.db, worker.claims.waiting)
        serve_health(settings.worker_port, worker.metrics, lambda: consuming.is_set() and database_answers(studio.db))

    @broker.task(name=TASK_NAME)
    def run_job(job_id: str) -> None:  # the message: a job id, nothing else
        worker.execute(str(job_id)[:32])

    worker.reap()  # at start-up: jobs of workers that died while none was watching
    worker.say_connected()  # the pages waiting in line now know a worker is here
    stop = threading.Event()
    threading.Thread(target=worker.reap_forever, args=(stop,), name="reaper", daemon=True).start()
    from celery.signals import worker_ready

    @worker_ready.connect(weak=False)
    def say_ready(**_: object) -> None:  # connected to the broker, consuming: what readiness checks wait for
        consuming.set()
        print(f"Headshot Studio worker {name}: ready for jobs.", flush=True)

    try:
        # solo pool: the job runs in this process, beside its model; one job at a time, none prefetched.
        broker.worker_main(["worker", "--pool=solo", "--concurrency=1", "--prefetch-multiplier=1", "-Q", QUEUE_NAME,
                            "--without-gossip", "--without-mingle", "--loglevel=WARNING", "-n", f"{name}@headshots"])
    finally:
        stop.set()
        try:
            worker.claims.worker_gone(worker.name)
        except Exception as exc:  # the database away: its row simply goes stale
            logging.getLogger("studio.workers").warning("worker row not removed: %s", type(exc).__name__)
        studio.close()
    return EXIT_OK
# --- end worker --------------------------------------------------------------------------


REGISTRATIONS = [_register_check, _register_run, _register_verify, _register_audit, _register_verify_receipt,
                 _register_docs, _register_team, _register_operator_link, _register_worker]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRATIONS:
        register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
