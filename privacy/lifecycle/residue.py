"""The residue audit: look everywhere data could linger and report anything that should not be there.

Scanned: the data root (vault, keys, database files, Gradio's temp dir under it), any extra
temp/cache directories, and the database: SQLite's files byte by byte (main file, `-wal`,
`-journal`, and the free pages, which `secure_delete` must have zeroed); on PostgreSQL, whose
files the studio cannot read, the dead row versions of the tables that only erasure changes
(erased rows the VACUUM after erasure must have removed). Findings:

    plaintext_image     image bytes (JPEG/PNG/WebP/GIF/HEIC/AVIF signatures, or a file Pillow decodes) outside the vault
    unencrypted_blob    a file in the vault (or team-shares) not in its sealed format (MAGIC / SHARE_MAGIC)
    orphan_blob         a vault file without an index row, or an index row whose key is gone; a
                        team-shares file without a live share row
    dangling_index      an index row (or live share row) whose file is missing
    expired_key         a data key of a category past its expiry
    session_past_expiry a session holding a category past its expiry (or unconsented past the hard cap)
    share_past_expiry   a headshot shared with a team, kept past the team's retention
    dirty_free_page     a free database page that was not zeroed (SQLite)
    dead_rows           erased rows still in a table's pages, not yet vacuumed away (PostgreSQL)
    stale_temp          a half-written vault temp file, or an old file left in a temp dir

Expected and not reported: the database itself, the master key, the receipt and C2PA
keys, the scheduler lock, and ciphertext in the vault and team-shares (which is never searched
inside: random bytes contain image signatures by chance). Locations are given relative to the
scanned root; they hold blob ids and audit ids, never session ids.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from PIL import Image
from sqlalchemy import and_, or_, select, text

from privacy.store.database import (
    BlobRow,
    ConsentRow,
    Database,
    DataKey,
    OwnerKey,
    ReturnKeyRow,
    SessionRow,
    TeamShareRow,
)
from privacy.store.vault import HEADSHOTS, IDENTITY, MAGIC, Vault
from privacy.teams.team_seal import SHARE_MAGIC
from privacy.teams.team_shares import SHARE_DIR_NAME
from privacy.teams.team_shares import share_dir as team_share_dir
from settings import Settings

# Signatures searched anywhere in a non-vault file: each is at least 4 constrained bytes,
# so chance matches in keys or database pages are out of reach (~1e-8 per byte offset).
_IMAGE_SIGNATURES = re.compile(
    rb"\xff\xd8\xff[\xc0-\xfe]"                       # JPEG SOI + a marker
    rb"|\x89PNG\r\n\x1a\n"                           # PNG
    rb"|RIFF.{4}WEBPVP8"                             # WebP
    rb"|GIF8[79]a"                                   # GIF
    rb"|ftyp(?:heic|heix|hevc|heim|heis|mif1|msf1|avif)",  # HEIF / AVIF brands
    re.DOTALL)
# Pillow is asked only about formats with a real header to parse, never the permissive ones
# (TGA, for instance, "opens" plenty of random files).
_PIL_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO")
_MAX_SCAN_BYTES = 512 * 1024 * 1024
# PostgreSQL: tables whose rows only erasure deletes or changes (a destroyed key, an erased session's
# rows, a return key emptied), so any dead row version in them is erased data. `sessions` and `jobs`
# are not among them: a living session's rows are updated, which leaves dead versions of live data.
ERASURE_ONLY_TABLES = tuple(t.__tablename__ for t in (DataKey, OwnerKey, BlobRow, ConsentRow, ReturnKeyRow))


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    detail: str


@dataclass
class ResidueReport:
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    bytes_scanned: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def to_json(self) -> str:
        return json.dumps({"clean": self.clean, "files_scanned": self.files_scanned,
                           "bytes_scanned": self.bytes_scanned, "findings": [asdict(f) for f in self.findings]},
                          indent=2, sort_keys=True)

    def summary(self) -> str:
        head = "clean" if self.clean else f"{len(self.findings)} finding(s)"
        lines = [f"residue audit: {head} ({self.files_scanned} files, {self.bytes_scanned} bytes scanned)"]
        lines += [f"  {f.kind}: {f.where} — {f.detail}" for f in self.findings]
        return "\n".join(lines)


def audit_residue(settings: Settings, db: Database, vault: Vault | None, now: float,
                  extra_dirs: Iterable[Path] = ()) -> ResidueReport:
    """Scan the data root, temp/cache dirs and database files at time `now`; `report.clean` when nothing is found."""
    report = ResidueReport()
    data_dir = Path(settings.data_dir)
    blob_dir = Path(vault.blob_dir if vault is not None else settings.blob_dir)
    db_files = _database_files(db)
    temp_dirs = [Path(settings.gradio_temp_dir), *map(Path, extra_dirs)]
    stale_before = now - settings.session_hard_cap_seconds
    share_dir = team_share_dir(data_dir)

    seen: set[Path] = set()
    for root in [data_dir, *temp_dirs]:
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            where = _where(path, data_dir, root)
            report.files_scanned += 1
            report.bytes_scanned += path.stat().st_size
            if resolved.parent == blob_dir.resolve():
                _check_vault_file(path, where, report)
            elif resolved.parent == share_dir.resolve():
                _check_vault_file(path, where, report, SHARE_MAGIC)
            else:
                _check_plain_file(path, where, report)
                if resolved not in db_files and _inside_any(resolved, temp_dirs) \
                        and path.stat().st_mtime < stale_before:
                    report.findings.append(Finding("stale_temp", where, "older than the session hard cap"))
    for db_file in db_files:
        if db_file.name.endswith(".db") and db_file.exists():
            _check_free_pages(db_file, _where(db_file, data_dir, db_file.parent), report)
    if db.dialect == "postgresql":
        _check_dead_rows(db, report)
    _check_index(db, blob_dir, report)
    _check_team_shares(db, share_dir, now, report)
    _check_expiry(db, now, settings, report)
    return report


def _check_vault_file(path: Path, where: str, report: ResidueReport, magic: bytes = MAGIC) -> None:
    if path.name.startswith("."):
        # `.<id>.tmp`: a write the vault never finished (a crash); it may hold a full ciphertext.
        report.findings.append(Finding("stale_temp", where, "half-written vault file"))
        return
    with path.open("rb") as f:
        head = f.read(64)
    if not head.startswith(magic):
        kind = "plaintext_image" if _IMAGE_SIGNATURES.search(head) or _pil_decodes(path) else "unencrypted_blob"
        report.findings.append(Finding(kind, where, "a vault file that is not vault ciphertext"))


def _check_plain_file(path: Path, where: str, report: ResidueReport) -> None:
    data = _read(path)
    match = _IMAGE_SIGNATURES.search(data)
    if match:
        report.findings.append(Finding("plaintext_image", where, f"image signature at byte {match.start()}"))
    elif _pil_decodes(path):
        report.findings.append(Finding("plaintext_image", where, "a decodable image file"))


def _check_free_pages(path: Path, where: str, report: ResidueReport) -> None:
    data = _read(path)
    if len(data) < 100 or not data.startswith(b"SQLite format 3\x00"):
        return
    page_size = struct.unpack(">H", data[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    trunk = struct.unpack(">I", data[32:36])[0]
    pages = len(data) // page_size
    visited = 0
    while trunk and visited <= pages:
        visited += 1
        page = data[(trunk - 1) * page_size:trunk * page_size]
        if len(page) < 8:
            break
        next_trunk, count = struct.unpack(">II", page[:8])
        count = min(count, (page_size - 8) // 4)
        leaves = struct.unpack(f">{count}I", page[8:8 + 4 * count])
        # A trunk page's tail is not checked: it keeps page numbers of leaves since reused, which
        # is not user data; the page itself was zeroed by secure_delete when it was freed.
        for leaf in leaves:
            if 0 < leaf <= pages and any(data[(leaf - 1) * page_size:leaf * page_size]):
                report.findings.append(Finding("dirty_free_page", where, f"free page {leaf} was not zeroed"))
        trunk = next_trunk


def _check_dead_rows(db: Database, report: ResidueReport) -> None:
    """PostgreSQL's counterpart of the free-page check: erased rows a VACUUM has not removed yet.

    pgstattuple, where the extension is installed and the studio's user may call it, reads the pages
    and counts them exactly; otherwise PostgreSQL's statistics are asked, which lag a few seconds
    behind other connections.
    """
    with db.autocommit_connection() as conn:
        exact = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pgstattuple'")).first() is not None \
            and conn.execute(text("SELECT has_function_privilege('pgstattuple(regclass)', 'EXECUTE')")).scalar()
        for table in ERASURE_ONLY_TABLES:
            if exact:
                dead = conn.execute(text("SELECT dead_tuple_count FROM pgstattuple(CAST(:t AS regclass))"),
                                    {"t": table}).scalar()
            else:
                dead = conn.execute(text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = "
                                         "CAST(:t AS regclass)"), {"t": table}).scalar()
            if dead:
                report.findings.append(Finding("dead_rows", table, f"{dead} erased row version(s) not vacuumed away"
                                               + ("" if exact else " (by PostgreSQL's statistics)")))


def _check_index(db: Database, blob_dir: Path, report: ResidueReport) -> None:
    on_disk = {p.name for p in blob_dir.iterdir() if p.is_file() and not p.name.startswith(".")} \
        if blob_dir.is_dir() else set()
    with db.session() as s:
        # A blob's key is wrapped by the master key or, once handed to its owner, by the owner's key.
        rows = s.execute(select(BlobRow.id, DataKey.session_id, OwnerKey.session_id).outerjoin(
            DataKey, and_(DataKey.session_id == BlobRow.session_id, DataKey.category == BlobRow.category)).outerjoin(
            OwnerKey, and_(OwnerKey.session_id == BlobRow.session_id, OwnerKey.category == BlobRow.category))).all()
    indexed = {blob_id for blob_id, _, _ in rows}
    for blob_id, master_held, owner_held in rows:
        if blob_id not in on_disk:
            report.findings.append(Finding("dangling_index", f"blobs/{blob_id}", "index row without its file"))
        elif master_held is None and owner_held is None:
            report.findings.append(Finding("orphan_blob", f"vault/{blob_id}", "ciphertext whose key is destroyed"))
    for name in sorted(on_disk - indexed):
        report.findings.append(Finding("orphan_blob", f"vault/{name}", "file without an index row"))


def _check_team_shares(db: Database, share_dir: Path, now: float, report: ResidueReport) -> None:
    on_disk = {p.name for p in share_dir.iterdir() if p.is_file() and not p.name.startswith(".")} \
        if share_dir.is_dir() else set()
    with db.session() as s:
        live = dict(s.execute(select(TeamShareRow.id, TeamShareRow.expires_at)
                              .where(TeamShareRow.erased_at.is_(None))).all())
    for share_id, expires_at in sorted(live.items()):
        if share_id not in on_disk:
            report.findings.append(Finding("dangling_index", f"team_shares/{share_id}", "share row without its file"))
        if expires_at <= now:
            report.findings.append(Finding("share_past_expiry", f"team_shares/{share_id}",
                                           "kept past the team's retention"))
    for name in sorted(on_disk - live.keys()):
        report.findings.append(Finding("orphan_blob", f"{SHARE_DIR_NAME}/{name}", "file without a live share row"))


def _check_expiry(db: Database, now: float, settings: Settings, report: ResidueReport) -> None:
    identity_due = and_(SessionRow.identity_expires_at <= now)
    headshots_due = and_(SessionRow.headshots_expires_at <= now)
    with db.session() as s:
        keys = s.execute(select(SessionRow.audit_id, DataKey.category).join(
            DataKey, DataKey.session_id == SessionRow.id).where(or_(
                and_(DataKey.category == IDENTITY, identity_due),
                and_(DataKey.category == HEADSHOTS, headshots_due)))).all()
        sessions = s.execute(select(SessionRow.audit_id).where(or_(
            and_(identity_due, SessionRow.identity_erased_at.is_(None)),
            headshots_due,
            and_(SessionRow.consented_at.is_(None),
                 SessionRow.created_at <= now - settings.session_hard_cap_seconds)))).scalars().all()
        keys += s.execute(select(SessionRow.audit_id, OwnerKey.category).join(
            OwnerKey, OwnerKey.session_id == SessionRow.id).where(
                and_(OwnerKey.category == HEADSHOTS, headshots_due))).all()
    for audit_id, category in keys:
        report.findings.append(Finding("expired_key", f"data_keys/{audit_id}/{category}", "key past its expiry"))
    for audit_id in sessions:
        report.findings.append(Finding("session_past_expiry", f"sessions/{audit_id}", "not erased at its expiry"))


def _database_files(db: Database) -> set[Path]:
    path = db.sqlite_path
    if path is None:
        return set()
    path = path.resolve()
    return {path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-journal", "-shm"))}


def _pil_decodes(path: Path) -> bool:
    try:
        with Image.open(path, formats=_PIL_FORMATS) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 — anything Pillow refuses is, for this question, not an image
        return False


def _read(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(_MAX_SCAN_BYTES)


def _where(path: Path, data_dir: Path, root: Path) -> str:
    """Where a finding is, without what a user sent: folder names of ours are kept, the rest masked.

    Vault files are named by random blob ids and database/key files by us, but a cached upload
    keeps the person's own file name (e.g. IMG_1234_Jane.jpg) under a content-hash folder: the
    report shows the top folder and a short digest instead, enough to find the file again.
    """
    for base in (data_dir, root):
        try:
            relative = path.resolve().relative_to(base.resolve())
        except ValueError:
            continue
        if len(relative.parts) <= 1 or relative.parts[0] in ("vault", SHARE_DIR_NAME):  # random ids, ours
            return str(relative)
        return f"{relative.parts[0]}/…/file-{hashlib.sha256(str(relative).encode()).hexdigest()[:12]}"
    return f"file-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def _inside_any(path: Path, dirs: list[Path]) -> bool:
    return any(d.is_dir() and path.is_relative_to(d.resolve()) for d in dirs)
