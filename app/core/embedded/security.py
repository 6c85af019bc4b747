"""The superuser's password and pg_hba.conf of an embedded cluster.

* **Authentication.** Every connection needs the superuser's password (scram-sha-256, Unix socket
  only): other processes of ``run_as`` (``nobody`` is shared) cannot connect. The password is
  generated with ``secrets`` and kept in ``<cluster>/pgrun/password``, mode 0600, owned by the
  service's user; the URL carries it. Each cold start sets it again (single-user mode, as a SCRAM
  verifier) and rewrites pg_hba.conf, which also upgrades clusters made with ``trust``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from .cluster import _Cluster
from .paths import EmbeddedPostgresError

log = logging.getLogger("app.embedded")


def _scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677), so the
    password itself is never sent to the server, nor can it land in its log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = [base64.b64encode(b).decode() for b in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{b64[0]}${b64[1]}:{b64[2]}"


# The whole pg_hba.conf of an embedded cluster, rewritten at each cold start. Compared with the
# file at each start: keep the text as it is (its first line still names the old single module)
# or every running cluster of an older version gets its password set again, with a warning.
_HBA = """\
# Written by data-items-service at each start (app/core/embedded.py); edits are overwritten.
# Unix socket only (listen_addresses is empty), and every connection needs the password
# (pgrun/password next to pgdata, readable only by the service's user).
local all all scram-sha-256
"""


class _Secured(_Cluster):
    """The password (pgrun/password) and pg_hba.conf of the cluster."""

    @property
    def password_file(self) -> Path:
        """Where the superuser's password is kept (mode 0600, the service's user only)."""
        return self._state_dir / "password"

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
