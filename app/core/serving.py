"""`python -m app serve` with WORKERS > 1: uvicorn's supervisor, each worker listening on a socket
of its own.

uvicorn gives every worker the same listening socket. A worker woken by a new connection accepts
every connection waiting (asyncio accepts up to the backlog at once), so a burst of clients (a
load balancer opening its pool, wrk) all landed on one worker and stayed there: with WORKERS=2
the second process sat idle. Here each worker has its own socket on the same address, with
SO_REUSEPORT, and the kernel spreads new connections across them (by a hash of the client's
address and port). A worker that dies is replaced on the same socket, so the connections that
arrive meanwhile wait in its queue instead of going nowhere. And the sockets are TCP sockets as
asyncio recognises them, so their connections get TCP_NODELAY (see `_socket`).

The supervision itself (health checks, restarts, SIGHUP, SIGTTIN/SIGTTOU, shutdown) is uvicorn's
`Multiprocess`; only where a worker gets its socket differs.
"""

from __future__ import annotations

import logging
import socket
import sys

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")


class ReusePortMultiprocess(Multiprocess):
    def __init__(self, config: Config) -> None:
        super().__init__(config, sockets=[])
        self.worker_sockets: list[socket.socket] = []

    def _socket(self) -> socket.socket:
        host = self.config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so, and
        # uvicorn's own socket for several workers (proto 0) left Nagle's algorithm on, so every
        # answer written in two parts (headers, body) on a kept-alive connection waited for the
        # client's delayed ACK: 40 ms a request
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, self.config.port))
        except OSError as exc:
            log.error(exc)
            sys.exit(STARTUP_FAILURE)
        sock.set_inheritable(True)
        return sock

    def _process(self, idx: int) -> Process:
        return Process(self.config, [self.worker_sockets[idx]])

    def _check_port_free(self) -> None:
        """Fail as uvicorn would when the address is taken: SO_REUSEPORT alone would let a second
        service (an old version still running) silently share the port's connections."""
        host = self.config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, self.config.port))
            except OSError as exc:
                log.error(exc)
                sys.exit(STARTUP_FAILURE)

    def init_processes(self) -> None:
        self._check_port_free()
        for idx in range(self.processes_num):
            self.worker_sockets.append(self._socket())
            process = self._process(idx)
            process.start()
            self.processes.append(process)
        log.info(
            "Uvicorn running on http://%s:%d, %d workers, a socket each (SO_REUSEPORT)",
            self.config.host,
            self.config.port,
            self.processes_num,
        )

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error(f"Child process [{process.pid}] failed to start, stopping the parent.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info(f"Child process [{process.pid}] died")
            process = self._process(idx)  # on the same socket
            process.start()
            self.processes[idx] = process

    def restart_all(self) -> None:
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new_process = self._process(idx)
            new_process.start()
            if not new_process.wait_until_ready(
                self.config.timeout_worker_healthcheck, self.should_exit
            ):
                new_process.kill()
                new_process.join()
                if not self.should_exit.is_set():
                    log.error(
                        f"New child process [{new_process.pid}] was not ready in time; "
                        f"keeping worker [{old_process.pid}] and aborting the restart."
                    )
                return
            old_process.terminate()
            old_process.join()
            self.processes[idx] = new_process

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.worker_sockets.append(self._socket())
        process = self._process(len(self.worker_sockets) - 1)
        process.start()
        self.processes.append(process)

    def handle_ttou(self) -> None:
        log.info("Received SIGTTOU, decreasing number of processes.")
        if self.processes_num <= 1:
            log.info("Already reached one process, cannot decrease the number of processes.")
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        self.worker_sockets.pop().close()

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sock in self.worker_sockets:
                sock.close()
