"""The watchdog process of an embedded cluster: it stops the server once no owner is alive.

* **Orphans.** pg_ctl puts the postmaster in its own session, so a killed owner leaves it running.
  A running server is reused, and the last live owner stops it (``stop()`` is also registered
  with ``atexit``). A watchdog process (one per cluster, started by the first owner, in its own
  session) checks the owners every second and stops the server (``pg_ctl stop -m fast``) once
  none is alive, so a SIGKILLed service does not leave it running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .cluster import _Cluster
from .paths import EmbeddedPostgresError, _proc_start

log = logging.getLogger("app.embedded")

WATCHDOG_INTERVAL = 1.0  # seconds between two looks at the owners

# Watchdogs this process started: kept referenced (and reaped) so none is left a zombie.
_WATCHDOGS: list[subprocess.Popen[bytes]] = []

# `python -I -c` of the watchdog: loads this package by its path, under another name (no import
# of `app`, no sys.path); its modules import each other relatively for that reason.
_WATCHDOG_BOOT = """\
# data-items-service: embedded PostgreSQL watchdog (see app/core/embedded/watchdog.py)
import importlib.util, os, sys
package = os.environ["DIS_WATCHDOG_PACKAGE"]
init = os.path.join(package, "__init__.py")
spec = importlib.util.spec_from_file_location("_dis_embedded", init, submodule_search_locations=[package])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
sys.modules["_dis_embedded.watchdog"]._watchdog_main(os.environ["DIS_WATCHDOG"])
"""


class _Watched(_Cluster):
    """Starting and stopping the cluster's watchdog, and its loop (`_watch`)."""

    @property
    def watchdog_pid(self) -> int | None:
        """PID of the cluster's live watchdog, or None."""
        record = self._watchdog_record()
        return record[0] if record is not None and _proc_start(record[0]) == record[1] else None

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
            DIS_WATCHDOG_PACKAGE=str(Path(__file__).resolve().parent),
            DIS_WATCHDOG=json.dumps(config),
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


def _watchdog_main(raw_config: str) -> None:
    """Entry point of the watchdog process (see `_Watched._watch`)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s watchdog[%(process)d] %(message)s"
    )
    config = json.loads(raw_config)
    pg = _Watched(
        config["data_dir"],
        run_as=config["run_as"],
        runtime_dir=config["runtime_dir"],
        ephemeral=config["ephemeral"],
    )
    cluster, bin_dir, sock = map(Path, config["placement"])
    pg._placement = (cluster, bin_dir, sock)
    log.info("watching %s", pg.pgdata)
    pg._watch(config["interval"])
