"""SQL lives in repositories (docs/architecture.md): no router, service or schema module builds a
statement. A static check over the same SQL sites as tests/test_scoping.py (`select`, `update`,
`delete`, `insert`, `text` from SQLAlchemy, `session.get`): each must be in a `repository.py`
or in one of the modules below, which are plumbing or background workers, with the reason."""

from __future__ import annotations

from tests.test_scoping import sql_sites

OUTSIDE_REPOSITORIES = {
    # the repository layer's vocabulary (with rows/query.py, which builds Core expressions only)
    "rows/search.py": "the search condition (an indexed text expression) row repositories use",
    # plumbing
    "core/db.py": "sessions: statement timeouts and snapshots of the unit of work",
    "core/locks.py": "advisory locks",
    "core/migrate.py": "schema migrations",
    "health.py": "readiness: SELECT 1 without an account",
    # background workers and DDL, serving every account (see tests/test_scoping.py)
    "access/counter.py": "request counters of every key a process served, flushed together",
    "jobs/queue.py": "the import worker's queue",
    "rows/maintenance.py": "search indexes and vacuum in the background",
    "rows/partitions.py": "partition DDL",
    "webhooks/outbox.py": "the webhook worker's outbox",
    "webhooks/vault.py": "re-encrypting webhook secrets at start-up and from the CLI",
}


def test_sql_is_built_in_repositories_only() -> None:
    stray = sorted(
        f"{s.path}:{s.line} {s.where} ({s.kind})"
        for s in sql_sites()
        if not s.path.endswith("repository.py") and s.path not in OUTSIDE_REPOSITORIES
    )
    assert stray == [], "SQL outside a repository:\n" + "\n".join(stray)


def test_the_exceptions_are_still_needed() -> None:
    """An exception without an SQL site left is dropped from the list (it would hide one)."""
    used = {s.path for s in sql_sites()}
    assert set(OUTSIDE_REPOSITORIES) <= used, set(OUTSIDE_REPOSITORIES) - used
