"""Layers stay in their place (docs/architecture.md), checked statically.

Who may call whom: a domain imports another domain's service, schemas and errors, never its
repository or other internals (the exceptions left are listed with their reason, and the list may
not outlive them); services and their helpers never see a Request or a Response; routers hold no
`try`, no commit and no `app.state` (shared resources come in through app/core/deps.py).

SQL lives in repositories: no router, service or schema module builds a
statement. A static check over the same SQL sites as tests/test_scoping.py (`select`, `update`,
`delete`, `insert`, `text` from SQLAlchemy, `session.get`): each must be in a `repository.py`
or in one of the modules below, which are plumbing or background workers, with the reason."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_scoping import sql_sites

OUTSIDE_REPOSITORIES = {
    # the repository layer's vocabulary (with rows/query.py, which builds Core expressions only)
    "rows/search.py": "the search condition (an indexed text expression) row repositories use",
    # plumbing
    "core/db.py": "sessions: statement timeouts and snapshots of the unit of work",
    "core/locks.py": "advisory locks",
    "core/migrate.py": "schema migrations",
    "health.py": "readiness: SELECT 1 without an account",
    "shares/lookup.py": "a share link found by its token's digest, before any account is known "
    "(kept apart from shares/repository.py, whose queries stay checked)",
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


# ------------------------------------------------------------------------- who may call whom

APP = Path(__file__).resolve().parents[1] / "app"
NOT_DOMAINS = {"core", "models", "fieldtypes"}  # plumbing, the ORM, the field-type registry

# What a domain may import from another: the service (its rules), schemas and errors (what it
# speaks), the HTTP helpers a router uses (dependencies, params, http), and the row query
# language (rows/filters.py: filters, search and sort resolved against fields, passed down to
# repositories; rows/query.py: the conditions and ORDER BY keys built from them, for
# repositories only, see test_row_conditions_are_built_in_repositories).
PUBLIC = {"service", "schemas", "errors", "dependencies", "params", "http", "filters", "query"}

# Imports of another domain's internals left today, per importing domain (a module split
# within a domain keeps its entry), with the reason.
ACROSS_DOMAINS = {
    ("accounts", "access.counter"): "authentication counts the request (rate limit) in memory",
    ("usage", "access.counter"): "the process's request counts not yet flushed",
    ("jobs", "ingestion.upload"): "a job is queued with the spooled upload (SpooledFile)",
    ("jobs", "ingestion.results"): "the job worker answers as the upload endpoints do",
    ("jobs", "rows.maintenance"): "the job worker tells row maintenance what it loaded",
    ("transfer", "rows.partitions"): "the copy and bundle repositories write rows into a "
    "detached partition, by its table name",
    ("ingestion", "rows.loading"): "uploads load rows through the rows domain's interface for "
    "bulk loads (a detached partition attached at the end; an append's search-index drop)",
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(APP.parent).with_suffix("").parts)


def _imports(path: Path) -> set[str]:
    """The app modules `path` imports (`from app.rows import partitions` is `app.rows.partitions`
    when that is a module), lazy imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("app.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                is_module = (APP.parent / Path(*name.split("."))).with_suffix(".py").exists()
                found.add(name if is_module else node.module)
    return found


def _domain_modules() -> list[tuple[str, Path]]:
    return [
        (path.parent.name, path)
        for path in sorted(APP.glob("*/*.py"))
        if path.parent.name not in NOT_DOMAINS
    ]


def _across() -> dict[tuple[str, str], list[str]]:
    """(importing domain, `domain.module` of another domain) -> importing files, for every
    import of a module outside PUBLIC."""
    found: dict[tuple[str, str], list[str]] = {}
    for domain, path in _domain_modules():
        for target in _imports(path):
            parts = target.split(".")
            if len(parts) < 3 or parts[1] in NOT_DOMAINS or parts[1] == domain:
                continue
            if parts[2] not in PUBLIC:
                key = (domain, f"{parts[1]}.{parts[2]}")
                found.setdefault(key, []).append(str(path.relative_to(APP)))
    return found


def test_a_domain_calls_another_domains_service_not_its_internals() -> None:
    stray = sorted(
        f"{files} import {target}"
        for (domain, target), files in _across().items()
        if (domain, target) not in ACROSS_DOMAINS
    )
    assert stray == [], "Reaching into another domain (use its service):\n" + "\n".join(stray)


def test_the_cross_domain_exceptions_are_still_needed() -> None:
    stale = set(ACROSS_DOMAINS) - set(_across())
    assert not stale, f"no longer imported, drop from ACROSS_DOMAINS: {sorted(stale)}"


def test_row_conditions_are_built_in_repositories() -> None:
    users = sorted(
        str(path.relative_to(APP))
        for _, path in _domain_modules()
        if "app.rows.query" in _imports(path)
        and path.name != "repository.py"
        and path.parent.name != "rows"
    )
    assert users == [], f"rows/query.py is for repositories: {users}"


# HTTP-facing modules: they may see requests and responses; nothing below them may.
HTTP_MODULES = {"router.py", "dependencies.py", "http.py", "params.py"}
HTTP_EXCEPTIONS = {
    "ingestion/upload.py": "the multipart parser: streams the request body to disk",
}


def test_services_never_see_requests_or_responses() -> None:
    http = sorted(
        str(path.relative_to(APP))
        for _, path in _domain_modules()
        if path.name not in HTTP_MODULES
        and str(path.relative_to(APP)) not in HTTP_EXCEPTIONS
        and any(
            (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").split(".")[0] in ("fastapi", "starlette")
            )
            or (
                isinstance(node, ast.Import)
                and any(a.name.split(".")[0] in ("fastapi", "starlette") for a in node.names)
            )
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert http == [], f"HTTP below the router layer: {http}"


def test_routers_hold_no_try_no_commit_and_no_app_state() -> None:
    """Errors are AppErrors rendered by one handler, transactions end in SessionDep (or a
    dependency that says why), shared resources come in as dependencies (app/core/deps.py)."""
    found = []
    for path in sorted(APP.glob("*/router.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(APP)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Try | ast.TryStar):
                found.append(f"{where} try")
            elif isinstance(node, ast.Attribute) and node.attr == "commit":
                found.append(f"{where} commit")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr == "state"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "app"
            ):
                found.append(f"{where} app.state")
    assert found == [], "\n".join(found)
