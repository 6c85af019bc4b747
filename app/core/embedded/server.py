"""`EmbeddedPostgres`: start (or reuse), stop, halt and resume one embedded cluster.

* **Locale.** initdb gets ``LC_ALL=C.UTF-8`` (a LANG naming a missing locale breaks it) and
  ``--locale=C.UTF-8``, which folds non-ASCII case for ILIKE and pg_trgm (É/é, Cyrillic).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shlex
import time
from types import TracebackType
from urllib.parse import quote

from .cluster import _tail
from .paths import _PORT, EmbeddedPostgresError, _device_of, _proc_start, sweep_relocated_clusters
from .security import _Secured
from .watchdog import _Watched

log = logging.getLogger("app.embedded")


class EmbeddedPostgres(_Secured, _Watched):
    """One owner of an embedded PostgreSQL cluster for `data_dir`; see the package docstring."""

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

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

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
