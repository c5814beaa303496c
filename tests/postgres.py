"""Debian's PostgreSQL 15 for the tests: found on this machine, or installed with apt when the tests run as root.

Like tests/app/chromium.py for the browser: on a fresh Debian machine the README's test command
alone is enough, because this installs the `postgresql` package the first time (CI runs as root).
Not root and not installed: the PostgreSQL variants are skipped, with the command to run.

`PostgresServer` is a throwaway cluster: `initdb` into a temp directory (as the `postgres` OS user
when root, since the server refuses to run as root), listening on 127.0.0.1 at a free port and on a
unix socket inside that directory, never on the machine's own cluster. Each test gets a fresh
database; `stop` ends the server and removes the directory. The tests own the data directory, so
they can read a table's files byte by byte (`database_files`) after a CHECKPOINT.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_VERSION = "15"
DEBIAN_BIN_ROOT = Path("/usr/lib/postgresql")
INSTALL = "apt-get install -y postgresql"
OS_USER = "postgres"
SUPERUSER = "postgres"
# What the studio connects as: not a superuser, the owner of its database, as an operator would set it up.
STUDIO_ROLE = "studio"
# Durability off: a test cluster is thrown away, and fsync on a loaded 2-core machine costs seconds.
# CHECKPOINT still writes every page to the table files (fsync=off only skips the flush to the disk).
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "autovacuum": "off",  # the tests must see what the studio's own VACUUM does, not autovacuum's
}
WAIT_SECONDS = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and this process may not install it (not root, or no apt)."""


def find_binaries() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`: Debian's version 15 first, then any other."""
    candidates = [DEBIAN_BIN_ROOT / PG_VERSION / "bin",
                  *sorted(DEBIAN_BIN_ROOT.glob("*/bin"), key=lambda p: p.parent.name, reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bin_dir in candidates:
        if all((bin_dir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def find_or_install_postgres() -> Path:
    """PostgreSQL's binaries; installed once with apt-get if missing and allowed (root, apt present)."""
    found = find_binaries()
    if found is not None:
        return found
    if not may_install():
        raise PostgresUnavailable("PostgreSQL is not installed and these tests may not install it: "
                                  f"run `sudo {INSTALL}`.")
    # The package's own post-install starts a cluster of the machine; ours never uses it.
    installed = apt_install("postgresql")
    found = find_binaries()
    if found is None:
        raise RuntimeError(f"apt-get could not install PostgreSQL (exit {installed.returncode}): "
                           f"{installed.stderr.strip()[-500:]}")
    return found


def may_install() -> bool:
    """Whether these tests may install a missing Debian package themselves (as root, with apt: CI)."""
    return os.geteuid() == 0 and bool(shutil.which("apt-get"))


def apt_install(package: str) -> subprocess.CompletedProcess:
    """`apt-get install` one package quietly (after an update), as tests/redis_server.py does for Redis too."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=600)
    return subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                          check=False, env=env, capture_output=True, text=True, timeout=900)


def database_name(url: str) -> str:
    """The database a URL of `PostgresServer.url` names."""
    return url.rsplit("/", 1)[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temp directory; `url()` of a fresh database per test."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        # Not under pytest's tmp_path: that is 0700 to root, and the server runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="headshot-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        self.port = 0
        if self.as_root:
            account = _postgres_account()
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _run(self, *args: str, timeout: float = WAIT_SECONDS) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", OS_USER, "--", *command]
        # cwd: the checkout may sit where `postgres` cannot enter (/root), and initdb would stop there.
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed (exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def start(self) -> "PostgresServer":
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")
        for attempt in range(3):  # a free port can be taken between asking and binding
            self.port = _free_port()
            options = {**SERVER_OPTIONS, "port": str(self.port), "unix_socket_directories": str(self.socket_dir)}
            with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
                conf.writelines(f"{key} = '{value}'\n" for key, value in options.items())
            try:
                self._run("pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", str(WAIT_SECONDS),
                          "-l", str(self.root / "server.log"), timeout=WAIT_SECONDS + 10)
                break
            except RuntimeError:
                if attempt == 2:
                    raise RuntimeError("PostgreSQL did not start: " + self.log_tail()) from None
        # pgstattuple in the template, callable by the studio's role: every test database has it, so the
        # residue audit counts dead rows exactly (privacy/lifecycle/residue.py) instead of reading the statistics.
        self.execute("template1", "CREATE EXTENSION IF NOT EXISTS pgstattuple")
        self.execute("postgres", f"CREATE ROLE {STUDIO_ROLE} LOGIN")
        self.execute("postgres", f"GRANT pg_stat_scan_tables TO {STUDIO_ROLE}")
        return self

    def log_tail(self) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-800:] if log.exists() else "(no server log)"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{STUDIO_ROLE}@127.0.0.1:{self.port}/{database}"

    def execute(self, database: str, sql: str) -> list[tuple]:
        """Run one statement as the superuser (what the studio's role may not: CHECKPOINT, CREATE ROLE)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database,
                             autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def create_database(self) -> str:
        """A fresh, empty database (a copy of template1) owned by the studio's role; returns its SQLAlchemy URL."""
        name = f"studio_{secrets.token_hex(6)}"
        self.execute("postgres", f"CREATE DATABASE {name} OWNER {STUDIO_ROLE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = database_name(url)
        self.execute("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: ends leftover connections

    def database_files(self, url: str) -> list[Path]:
        """Every file of the database's directory (tables, indexes, TOAST, maps), after a CHECKPOINT.

        The CHECKPOINT writes every changed page from shared buffers into these files, so what was
        erased and vacuumed is gone from them, or the byte scan finds it. The write-ahead log
        (pg_wal) is not among them: see README, "PostgreSQL".
        """
        name = database_name(url)
        self.execute(name, "CHECKPOINT")
        [(oid,)] = self.execute(name, f"SELECT oid FROM pg_database WHERE datname = '{name}'")
        return sorted(p for p in (self.data_dir / "base" / str(oid)).iterdir() if p.is_file())

    def stop(self) -> None:
        """Stop the server (fast shutdown, then immediate, each a bounded wait) and remove its directory."""
        try:
            for mode in ("fast", "immediate"):  # immediate: a connection a test leaked must not hang the run
                if not (self.data_dir / "postmaster.pid").exists():
                    break
                try:
                    self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "20", timeout=30)
                except (RuntimeError, subprocess.TimeoutExpired):
                    continue
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _postgres_account() -> pwd.struct_passwd:
    """The `postgres` OS user (Debian's package creates it); created here if the binaries came without it."""
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        OS_USER], check=True, capture_output=True, timeout=60)
        return pwd.getpwnam(OS_USER)
