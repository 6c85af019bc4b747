"""Command line: `python -m app serve | migrate | accounts … | keys … | audit … | webhooks …`.

Accounts and keys are administered here, not over HTTP (there is no public sign-up). The commands
work while the service runs on the same DATA_DIR: the embedded PostgreSQL is shared between them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.core.database import open_database
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import AppError
from app.core.logging import configure_logging
from app.core.migrate import migrate


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else text)


async def _with_session(fn: Callable[[AsyncSession], Awaitable[None]], *, url: str) -> None:
    settings = get_settings()
    await migrate(url)
    engine = create_engine(url, settings, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await fn(session)
    finally:
        await engine.dispose()


def _run_db(fn: Callable[[AsyncSession], Awaitable[None]]) -> None:
    handle = open_database(get_settings())
    try:
        asyncio.run(_with_session(fn, url=handle.url))
    finally:
        handle.close()


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = get_settings()
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "root_path": settings.root_path,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "workers": args.workers or settings.workers,
    }
    if options["workers"] > 1:  # a listening socket per worker (see app/core/serving.py)
        from app.core.serving import ReusePortMultiprocess

        ReusePortMultiprocess(uvicorn.Config("app.main:build", **options)).run()
        return
    uvicorn.run("app.main:build", **options)


def cmd_migrate(args: argparse.Namespace) -> None:
    handle = open_database(get_settings())
    try:
        asyncio.run(migrate(handle.url))
    finally:
        handle.close()
    print("database schema is up to date")


def cmd_accounts_create(args: argparse.Namespace) -> None:
    from app.accounts import service

    async def run(session: AsyncSession) -> None:
        account, issued = await service.create_account(session, name=args.name)
        data = {"account_id": account.id, "api_key": issued.api_key, "key_id": issued.key_id}
        _print(
            args,
            data,
            f"account {account.id} ({account.name}) created\n"
            f"API key {issued.key_id}: {issued.api_key}\n"
            "Keep the key now: it is not shown again.",
        )

    _run_db(run)


def cmd_accounts_list(args: argparse.Namespace) -> None:
    from app.accounts.repository import AccountRepository

    async def run(session: AsyncSession) -> None:
        accounts = await AccountRepository(session).list_accounts()
        data = {
            "accounts": [
                {"id": a.id, "name": a.name, "created_at": a.created_at.isoformat()}
                for a in accounts
            ]
        }
        lines = [f"{a.id}\t{a.name}\t{a.created_at:%Y-%m-%d %H:%M}" for a in accounts]
        _print(args, data, "\n".join(lines) or "no accounts")

    _run_db(run)


def _key_data(key: Any, last_used: Any = None) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "data_items": None if key.data_items is None else list(key.data_items),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "last_used_at": last_used.isoformat() if last_used else None,
    }


def cmd_keys_create(args: argparse.Namespace) -> None:
    from app.accounts import service
    from app.accounts.scopes import ALL_SCOPES

    async def run(session: AsyncSession) -> None:
        expires = None
        if args.expires_in:
            expires = datetime.now(UTC) + service.parse_duration(args.expires_in)
        spec = service.KeySpec(
            name=args.name or "",
            scopes=frozenset(args.scope) if args.scope else ALL_SCOPES,
            data_items=frozenset(args.item) if args.item else None,
            expires_at=expires,
            rate_limit=args.rate_limit,
        )
        issued = await service.issue_key(session, account_id=args.account_id, spec=spec)
        assert issued.key is not None
        data = {**_key_data(issued.key), "account_id": issued.account_id, "api_key": issued.api_key}
        limits = ", ".join(
            part
            for part in (
                "scopes " + ",".join(issued.key.scopes),
                f"items {','.join(map(str, issued.key.data_items))}"
                if issued.key.data_items
                else "",
                f"expires {expires:%Y-%m-%d %H:%M} UTC" if expires else "",
                f"{args.rate_limit}/min" if args.rate_limit else "",
            )
            if part
        )
        _print(
            args,
            data,
            f"API key {issued.key_id} for account {issued.account_id} ({limits}): "
            f"{issued.api_key}\nKeep the key now: it is not shown again.",
        )

    _run_db(run)


def cmd_keys_list(args: argparse.Namespace) -> None:
    from app.accounts import service

    async def run(session: AsyncSession) -> None:
        keys = await service.list_keys(session, account_id=args.account_id)
        data = {"keys": [_key_data(k, used) for k, used in keys]}
        now = datetime.now(UTC)

        def state(k: Any) -> str:
            if k.revoked_at:
                return f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
            if k.expires_at and k.expires_at <= now:
                return f"expired {k.expires_at:%Y-%m-%d %H:%M}"
            return f"expires {k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "active"

        lines = [
            f"{k.id}\t{k.prefix}…\t{k.name or '-'}\t{','.join(k.scopes)}"
            + (f"\titems {','.join(map(str, k.data_items))}" if k.data_items else "\tall items")
            + f"\tcreated {k.created_at:%Y-%m-%d %H:%M}\t{state(k)}"
            + (f"\tlast used {used:%Y-%m-%d %H:%M}" if used else "\tnot used lately")
            for k, used in keys
        ]
        _print(args, data, "\n".join(lines) or "no keys")

    _run_db(run)


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from app.accounts import service

    async def run(session: AsyncSession) -> None:
        key = await service.revoke_key(session, key_id=args.key_id)
        data = {"key_id": key.id, "revoked": True}
        _print(args, data, f"API key {key.id} revoked")

    _run_db(run)


def cmd_audit(args: argparse.Namespace) -> None:
    from app.accounts import service

    async def run(session: AsyncSession) -> None:
        total, events = await service.audit_page(
            session, account_id=args.account_id, offset=0, limit=args.limit
        )
        data = {
            "total": total,
            "events": [
                {
                    "id": e.id,
                    "action": e.action,
                    "key_id": e.key_id,
                    "detail": e.detail,
                    "request_id": e.request_id,
                    "created_at": e.created_at.isoformat(),
                }
                for e in events
            ],
        }
        lines = [
            f"{e.created_at:%Y-%m-%d %H:%M:%S}\t{e.action}\tkey {e.key_id or '-'}\t"
            + json.dumps(e.detail, ensure_ascii=False)
            for e in events
        ]
        _print(args, data, "\n".join(lines) or "no events")

    _run_db(run)


def cmd_webhook_secrets(args: argparse.Namespace) -> None:
    from app.webhooks import vault

    settings = get_settings()
    box = vault.SecretBox.from_settings(settings)
    if not box.encrypting:
        raise AppError(
            "WEBHOOK_SECRET_KEY is not set: it gives the key to encrypt with, and the keys to "
            "decrypt with."
        )
    decrypt = args.action == "decrypt-secrets"

    async def run(url: str) -> vault.Rewritten:
        await migrate(url)
        engine = create_engine(url, settings, pool_size=1, max_overflow=0)
        try:
            if decrypt:
                return await vault.decrypt_stored(engine, box)
            return await vault.encrypt_stored(engine, box)
        finally:
            await engine.dispose()

    handle = open_database(settings)
    try:
        done = asyncio.run(run(handle.url))
    finally:
        handle.close()
    verb = "decrypted" if decrypt else "encrypted"
    _print(
        args,
        {verb: done.changed, "unreadable": done.unreadable, "webhooks": done.total},
        f"{done.changed} webhook secret(s) {verb} ({done.total} webhooks)",
    )
    if done.unreadable:
        raise AppError(
            f"{done.unreadable} webhook secret(s) cannot be decrypted with WEBHOOK_SECRET_KEY; "
            "add the key they were encrypted with (after the first one) and run this again."
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the HTTP service (migrates first unless MIGRATE_ON_START=false)"
    )
    serve.add_argument("--host", help="bind address (default: HOST)")
    serve.add_argument("--port", type=int, help="port (default: PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default: WORKERS)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )

    accounts = sub.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create", help="create an account and its first API key")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=cmd_accounts_create)
    listing = accounts.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_accounts_list)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    kcreate = keys.add_parser(
        "create", help="issue another API key for an account (every scope unless --scope)"
    )
    kcreate.add_argument("account_id", type=int)
    kcreate.add_argument("--name", help="what the key is for")
    kcreate.add_argument(
        "--scope",
        action="append",
        choices=["read", "write", "manage", "admin"],
        help="a scope the key has (repeat for several; default: all four)",
    )
    kcreate.add_argument(
        "--item", action="append", type=int, help="limit the key to this data item (repeatable)"
    )
    kcreate.add_argument("--expires-in", help="e.g. 30d, 12h, 2w (default: never)")
    kcreate.add_argument(
        "--rate-limit", type=int, help="requests per minute, instead of RATE_LIMIT_PER_MINUTE"
    )
    kcreate.add_argument("--json", action="store_true")
    kcreate.set_defaults(func=cmd_keys_create)
    klist = keys.add_parser(
        "list", help="list an account's keys: prefix, scopes, items, expiry, last use"
    )
    klist.add_argument("account_id", type=int)
    klist.add_argument("--json", action="store_true")
    klist.set_defaults(func=cmd_keys_list)
    krevoke = keys.add_parser(
        "revoke", help="revoke a key (refused by every process within AUTH_CACHE_SECONDS)"
    )
    krevoke.add_argument("key_id", type=int)
    krevoke.add_argument("--json", action="store_true")
    krevoke.set_defaults(func=cmd_keys_revoke)

    audit = sub.add_parser(
        "audit", help="an account's audit trail: keys created and revoked, requests refused (403)"
    )
    audit.add_argument("account_id", type=int)
    audit.add_argument("--limit", type=int, default=50, help="newest events shown (default 50)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=cmd_audit)

    hooks = sub.add_parser("webhooks", help="webhook signing secrets at rest").add_subparsers(
        dest="action", required=True
    )
    encrypt = hooks.add_parser(
        "encrypt-secrets",
        help="encrypt plain secrets with WEBHOOK_SECRET_KEY's first key, and re-encrypt those "
        "under a later one (the service also does this at start-up)",
    )
    encrypt.add_argument("--json", action="store_true")
    encrypt.set_defaults(func=cmd_webhook_secrets)
    decrypt = hooks.add_parser(
        "decrypt-secrets", help="store the secrets plain again (before removing the key)"
    )
    decrypt.add_argument("--json", action="store_true")
    decrypt.set_defaults(func=cmd_webhook_secrets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(
        "WARNING" if args.command != "serve" else settings.log_level, settings.log_format
    )
    try:
        args.func(args)
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0
