"""Every query is scoped to the caller's account: a static (AST) check over every SQL site in app/.

What "scoped" means here. A request may only reach its own account's data:
- account-owned rows (tables with an `account_id` column: data items, import jobs, webhooks, request
  counters) are filtered by `account_id`, or reached through an item the request already resolved
  for its account;
- everything else (fields, rows, reference files and their chunks, widgets, series, statistics,
  deliveries) is reached through such a parent: filtered by the id of an item (widget, webhook)
  that was already resolved for the account (`DataItemDep` and friends), never by its own id
  alone.

What the check does. It finds every SQL site (`select`, `update`, `delete`, `insert` and `text`
from SQLAlchemy, `session.get`) outside the models, and requires the statement that builds it to
use a scope: an attribute a repository was built with (`self.account_id`, `self.data_item_id`,
`self.item`, `self.widget_id`, …, or `self._scoped()`), or a parameter that carries one
(`account_id`, `item_id`, …), directly or through a local variable assigned from one. Raw SQL over
a tenant table must also say `<scope column> = :param` (or `= ANY(:param)`). `session.get(Model,
id)` is refused (a primary key alone is no scope). Unscoped by design, and listed below with the
reason: authentication and the operator CLI, and background workers that serve every account.

What it cannot see: a wrong value passed as a scope (that is what the cross-account 404 tests of
every resource check), or SQL built in a way it does not recognise (then it fails, and the rule or
the code should become clearer).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from app.models import Base

APP = Path(__file__).resolve().parents[1] / "app"

SQL_BUILDERS = {"select", "update", "delete", "insert", "text"}
SCOPE_ATTRS = {
    "account_id", "data_item_id", "item", "item_id", "widget_id", "webhook_id", "job_id",
    "_scoped",
}  # fmt: skip
# parameters that carry a scope: the caller's account, or an item resolved for it (a copy's
# `source` was resolved for the account, its `target` created by the same request)
SCOPE_PARAMS = {"account_id", "item_id", "data_item_id", "widget_id", "source", "target"}
SCOPE_COLUMNS = (
    "account_id", "data_item_id", "id", "widget_id", "webhook_id", "job_id", "file_id", "key_id",
)  # fmt: skip

UNSCOPED_BY_DESIGN = {
    "accounts/repository.py": "authentication (a key is found by prefix and digest before any "
    "account is known) and the operator CLI (accounts and keys by id)",
    "core/migrate.py": "schema migrations",
    "shares/lookup.py": "a dashboard's public page finds its share link by the token's digest "
    "before any account is known (as authentication finds a key); it then reads only that "
    "link's account and dashboard, through account-scoped services",
    "jobs/queue.py": "the import worker claims queued jobs of every account",
    "webhooks/outbox.py": "the webhook worker delivers events of every account",
    "webhooks/vault.py": "the operator's WEBHOOK_SECRET_KEY encrypts every account's webhook "
    "secrets (at start-up and from the CLI)",
    "rows/maintenance.py": "background upkeep (search indexes, vacuum) of items by id",
    "rows/partitions.py": "DDL of an item's partition, and the sweep of deleted items' ones",
    "access/counter.py": "request counters of every key a process served, flushed together "
    "(each row keyed by the key and account that authenticated its requests)",
}

TENANT_TABLES = sorted(t.name for t in Base.metadata.sorted_tables if t.name != "accounts")
_TENANT_SQL = re.compile(r"\b(FROM|JOIN|UPDATE|INTO)\s+(" + "|".join(TENANT_TABLES) + r")\b", re.I)
_TENANT_READ = re.compile(r"\b(FROM|JOIN|UPDATE)\s+(" + "|".join(TENANT_TABLES) + r")\b", re.I)
_SCOPE_PREDICATE = re.compile(
    r"\b(?:\w+\.)?(" + "|".join(SCOPE_COLUMNS) + r")\s*=\s*(:\w+|\$\d+|ANY\s*\(\s*:\w+)",
    re.I,
)
# SQL sent to asyncpg directly (`$1` parameters) is marked with app.core.reads.sql(...)
DRIVER_SQL_MODULE, DRIVER_SQL = "app.core.reads", "sql"


@dataclass
class Site:
    path: str
    line: int
    where: str
    kind: str
    problem: str = ""


def _sql_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names |= {a.asname or a.name for a in node.names if a.name in SQL_BUILDERS}
        if isinstance(node, ast.ImportFrom) and node.module == DRIVER_SQL_MODULE:
            names |= {a.asname or a.name for a in node.names if a.name == DRIVER_SQL}
    return names


def _is_session_get(call: ast.Call) -> bool:
    f = call.func
    if not (isinstance(f, ast.Attribute) and f.attr == "get"):
        return False
    owner = f.value
    return (isinstance(owner, ast.Name) and owner.id == "session") or (
        isinstance(owner, ast.Attribute) and owner.attr == "session"
    )


def _refs_scope(node: ast.AST, tainted: set[str]) -> bool:
    for n in ast.walk(node):
        if (
            isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
            and n.attr in SCOPE_ATTRS
        ):
            return True
        if isinstance(n, ast.Name) and n.id in tainted:
            return True
    return False


def _tainted(function: ast.AST) -> set[str]:
    """Scope parameters, and local names assigned (transitively) from a scope."""
    assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
    args = function.args
    params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    tainted = params & SCOPE_PARAMS
    changed = True
    while changed:
        changed = False
        for n in ast.walk(function):
            targets: list[ast.expr] = []
            if isinstance(n, ast.Assign):
                targets, value = n.targets, n.value
            elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and n.value is not None:
                targets, value = [n.target], n.value
            else:
                continue
            if not _refs_scope(value, tainted):
                continue
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name) and name.id not in tainted:
                        tainted.add(name.id)
                        changed = True
    # a list built up with .append(<scoped condition>) is scoped too
    for n in ast.walk(function):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("append", "extend")
            and isinstance(n.func.value, ast.Name)
            and any(_refs_scope(a, tainted) for a in n.args)
        ):
            tainted.add(n.func.value.id)
    return tainted


def _literal_sql(call: ast.Call) -> str:
    """The SQL text of a `text(...)` call (f-string holes become `?`)."""
    if not call.args:
        return ""
    arg = call.args[0]
    parts: list[str] = []
    for n in ast.walk(arg):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            parts.append(n.value)
        elif isinstance(n, ast.FormattedValue):
            parts.append("?")
    return " ".join(parts)


def sql_sites(root: Path = APP) -> list[Site]:
    sites: list[Site] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("models/"):
            continue  # column defaults, not queries
        tree = ast.parse(path.read_text())
        _visit(tree, [], None, rel, _sql_names(tree), sites)
    return sites


def _visit(
    node: ast.AST,
    stack: list[ast.AST],
    statement: ast.stmt | None,
    rel: str,
    builders: set[str],
    sites: list[Site],
) -> None:
    for child in ast.iter_child_nodes(node):
        inner = child if isinstance(child, ast.stmt) else statement
        if isinstance(child, ast.Call):
            f = child.func
            kind = None
            if isinstance(f, ast.Name) and f.id in builders:
                kind = f.id
            elif _is_session_get(child):
                kind = "session.get"
            if kind:
                sites.append(_judge(rel, child, kind, stack, statement))
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            _visit(child, [*stack, child], inner, rel, builders, sites)
        else:
            _visit(child, stack, inner, rel, builders, sites)


def _judge(
    rel: str, call: ast.Call, kind: str, stack: list[ast.AST], statement: ast.stmt | None
) -> Site:
    names = [getattr(s, "name", "?") for s in stack]
    site = Site(rel, call.lineno, ".".join(names) or "<module>", kind)
    if rel in UNSCOPED_BY_DESIGN:
        return site
    if kind == "session.get":
        site.problem = "session.get(Model, id) looks a row up by its primary key alone"
        return site
    functions = [s for s in stack if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if kind == DRIVER_SQL:
        kind = "text"  # judged as raw SQL
    sql = _literal_sql(call) if kind == "text" else ""
    if kind == "text" and not _TENANT_SQL.search(sql):
        return site  # SELECT 1, SET LOCAL, advisory locks: no tenant table
    if not functions:
        site.problem = "SQL at module level"
        return site
    function = functions[-1]
    tainted = _tainted(function)
    if kind == "text":
        # raw SQL: the text names its scope column, and the function binds a scope
        if _TENANT_READ.search(sql) and not _SCOPE_PREDICATE.search(sql):
            site.problem = "raw SQL over a tenant table without `<scope column> = :param`"
        elif not _refs_scope(function, tainted):
            site.problem = "the function binds no account or item scope"
        return site
    # a statement: scoped itself, or a part (a correlated subquery, a base statement kept in a
    # variable) of a statement that is
    if statement is None or not _scoped_use(statement, function, tainted):
        site.problem = "the statement uses no account or item scope"
    return site


def _assigned(statement: ast.stmt) -> set[str]:
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


_COMPOUND = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
)  # fmt: skip


def _own_part(statement: ast.stmt) -> list[ast.AST]:
    """A statement without the statements nested in it (a `for`'s iterable, an `if`'s test)."""
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        return [statement.target, statement.iter]
    if isinstance(statement, (ast.If, ast.While)):
        return [statement.test]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return list(statement.items)
    if isinstance(statement, _COMPOUND):
        return []
    return [statement]


def _scoped_use(statement: ast.stmt, function: ast.AST, tainted: set[str], depth: int = 0) -> bool:
    if any(_refs_scope(part, tainted) for part in _own_part(statement)):
        return True
    names = _assigned(statement)
    if not names or depth > 5:
        return False
    users = [
        s
        for s in ast.walk(function)
        if isinstance(s, ast.stmt)
        and s is not statement
        and any(
            isinstance(n, ast.Name) and n.id in names
            for part in _own_part(s)
            for n in ast.walk(part)
        )
    ]
    return any(_scoped_use(u, function, tainted, depth + 1) for u in users)


def test_there_are_sql_sites_to_check() -> None:
    sites = sql_sites()
    assert len(sites) > 80
    assert {s.path for s in sites} >= {
        "data_items/repository.py", "fields/repository.py", "rows/repository.py",
        "widgets/repository.py", "summary/repository.py", "ingestion/repository.py",
        "access/repository.py", "usage/repository.py",
    }  # fmt: skip


def test_every_query_is_scoped_to_the_account() -> None:
    problems = [f"{s.path}:{s.line} {s.where} ({s.kind}): {s.problem}" for s in sql_sites()]
    problems = [p for p in problems if not p.endswith(": ")]
    assert problems == [], "\n".join(problems)


def test_the_check_catches_unscoped_queries(tmp_path: Path) -> None:
    """The rules themselves: an unscoped select, update, raw SQL and session.get are caught."""
    bad = """
from sqlalchemy import select, text, update
from app.models import DataItem, Field

class LeakyRepository:
    def __init__(self, session, account_id):
        self.session = session
        self.account_id = account_id

    async def every_item(self):
        return await self.session.scalars(select(DataItem))

    async def rename(self, item_id_from_anywhere, name):
        await self.session.execute(update(DataItem).where(DataItem.id == item_id_from_anywhere))

    async def raw(self, data_item):
        await self.session.execute(text("SELECT * FROM fields WHERE field_label = :x"), {"x": 1})

    async def scoped_but_raw_without_predicate(self):
        await self.session.execute(text("SELECT * FROM fields"), {"a": self.account_id})

    async def by_pk(self, field_id):
        return await self.session.get(Field, field_id)

    def _scoped(self):
        return select(Field)

    async def uses_a_broken_base(self):
        return await self.session.scalars(self._scoped())

    async def fine(self):
        return await self.session.scalars(select(DataItem).where(DataItem.account_id == self.account_id))


async def driver_unscoped(conn, field_id):
    return await conn.fetch(sql("SELECT * FROM fields WHERE id = $1"), field_id)


async def driver_fine(conn, account_id, item_id):
    return await conn.fetch(sql("SELECT * FROM data_items WHERE id = $1 AND account_id = $2"),
                            item_id, account_id)

DRIVER_AT_MODULE_LEVEL = sql("SELECT * FROM data_items WHERE account_id = $1")
"""
    bad = bad.replace(
        "from app.models import", "from app.core.reads import sql\nfrom app.models import"
    )
    (tmp_path / "probe.py").write_text(bad)
    found = {s.where: s.problem for s in sql_sites(tmp_path)}
    assert found["driver_unscoped"] and found["<module>"]  # SQL for asyncpg, marked sql(...)
    assert found["driver_fine"] == ""
    assert all(found[f"LeakyRepository.{m}"] for m in ("every_item", "rename", "raw", "by_pk"))
    assert found["LeakyRepository.scoped_but_raw_without_predicate"]
    assert found["LeakyRepository._scoped"]  # a base statement must carry the scope itself
    assert found["LeakyRepository.fine"] == ""
