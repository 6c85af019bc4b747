"""Accounts and API keys: issuing, listing, revoking, and resolving a presented key.

A key is `dik_` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored,
with its first 12 characters as a lookup prefix; the full key is shown once, when it is created.
SHA-256 (not a slow password hash) is right here: the key has 256 bits of entropy.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.repository import AccountRepository
from app.accounts.scopes import ALL_SCOPES, Scope
from app.core.errors import BadRequest, Forbidden, NotFound
from app.models import Account, ApiKey, AuditEvent

KEY_PREFIX = "dik_"
LOOKUP_PREFIX_LEN = 12
MAX_KEY_CHARS = 200  # longer is never a key: refused without a lookup


@dataclass(frozen=True)
class AuthenticatedAccount:
    """The caller, as resolved from its API key (plain data: not bound to any session): its
    account, and what the key may do (app/accounts/scopes.py)."""

    id: int
    name: str
    key_id: int
    scopes: frozenset[str] = ALL_SCOPES
    data_items: frozenset[int] | None = None  # None: every item of the account
    expires_at: datetime | None = None
    rate_limit: int | None = None  # None: RATE_LIMIT_PER_MINUTE

    def sees_item(self, item_id: int) -> bool:
        return self.data_items is None or item_id in self.data_items


@dataclass(frozen=True)
class KeySpec:
    """What a new key may do."""

    name: str = ""
    scopes: frozenset[str] = ALL_SCOPES
    data_items: frozenset[int] | None = None  # None: every item of the account
    expires_at: datetime | None = None
    rate_limit: int | None = None  # None: RATE_LIMIT_PER_MINUTE


@dataclass(frozen=True)
class IssuedKey:
    account_id: int
    key_id: int
    api_key: str
    key: ApiKey | None = None


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_account(session: AsyncSession, *, name: str) -> tuple[Account, IssuedKey]:
    """An account and its first key, which has every scope."""
    name = name.strip()
    if not name:
        raise BadRequest("The account name must not be empty.")
    repo = AccountRepository(session)
    account = await repo.create_account(name)
    issued = await issue_key(session, account_id=account.id, spec=KeySpec(name="first key"))
    return account, issued


async def issue_key(
    session: AsyncSession,
    *,
    account_id: int,
    spec: KeySpec = KeySpec(),
    by: AuthenticatedAccount | None = None,
    request_id: str | None = None,
) -> IssuedKey:
    """A new key of the account (`by`: the key asking for it over the API, which may only
    create keys no broader than itself). Written to the audit trail."""
    repo = AccountRepository(session)
    if await repo.get_account(account_id) is None:
        raise NotFound(f"Account {account_id} does not exist.")
    _check_spec(spec)
    if spec.data_items is not None:
        unknown = sorted(
            set(spec.data_items) - await repo.existing_items(account_id, sorted(spec.data_items))
        )
        if unknown:
            raise BadRequest(
                f"`data_items`: {', '.join(map(str, unknown[:20]))} "
                f"{'is not a data item' if len(unknown) == 1 else 'are not data items'} of this account.",
                details=[
                    {"field": "data_items", "value": i, "message": "no such data item"}
                    for i in unknown[:20]
                ],
            )
    if by is not None:
        _no_broader(spec, by)
    key = _new_key()
    row = await repo.add_key(
        account_id,
        key[:LOOKUP_PREFIX_LEN],
        _hash(key),
        name=spec.name,
        scopes=sorted(spec.scopes, key=SCOPE_ORDER.index),
        data_items=None if spec.data_items is None else sorted(spec.data_items),
        expires_at=spec.expires_at,
        rate_limit_per_minute=spec.rate_limit,
        created_by_key_id=by.key_id if by is not None and by.key_id else None,
    )
    await repo.add_audit(
        account_id,
        by.key_id if by is not None else None,
        "key.created",
        {"key_id": row.id, **describe_key(row)},
        request_id,
    )
    return IssuedKey(account_id=account_id, key_id=row.id, api_key=key, key=row)


SCOPE_ORDER = [s.value for s in Scope]


def describe_key(key: ApiKey) -> dict[str, Any]:
    """A key as the audit trail records it (never its secret)."""
    return {
        "prefix": key.prefix,
        "name": key.name,
        "scopes": list(key.scopes),
        "data_items": None if key.data_items is None else list(key.data_items),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "rate_limit_per_minute": key.rate_limit_per_minute,
    }


def _check_spec(spec: KeySpec) -> None:
    problems = []
    if not spec.scopes:
        problems.append({"field": "scopes", "message": "needs at least one scope"})
    unknown = sorted(set(spec.scopes) - ALL_SCOPES)
    if unknown:
        problems.append(
            {
                "field": "scopes",
                "message": f"unknown scope {unknown[0]!r} (read, write, manage, admin)",
            }
        )
    if spec.expires_at is not None and spec.expires_at <= datetime.now(UTC):
        problems.append({"field": "expires_at", "message": "is not in the future"})
    if spec.rate_limit is not None and not 1 <= spec.rate_limit <= 1_000_000:
        problems.append(
            {"field": "rate_limit_per_minute", "message": "must be between 1 and 1,000,000"}
        )
    if spec.data_items is not None and not spec.data_items:
        problems.append(
            {"field": "data_items", "message": "must name at least one data item (or be left out)"}
        )
    if len(spec.name) > 200:
        problems.append({"field": "name", "message": "is longer than 200 characters"})
    if problems:
        raise BadRequest(
            "Invalid key: " + "; ".join(f"`{p['field']}` {p['message']}" for p in problems) + ".",
            details=problems,
        )


def _no_broader(spec: KeySpec, by: AuthenticatedAccount) -> None:
    """A key may only create keys no broader than itself: no scope it lacks, no item it does not
    see, no later expiry, no higher rate limit."""
    problems = []
    extra = sorted(set(spec.scopes) - set(by.scopes), key=SCOPE_ORDER.index)
    if extra:
        problems.append(
            {"field": "scopes", "message": f"this key does not have {', '.join(extra)}"}
        )
    if by.data_items is not None:
        if spec.data_items is None:
            problems.append(
                {
                    "field": "data_items",
                    "message": "this key is limited to some data items: name them",
                }
            )
        elif not spec.data_items <= by.data_items:
            outside = sorted(spec.data_items - by.data_items)
            problems.append({"field": "data_items", "message": f"this key cannot see {outside[0]}"})
    if by.expires_at is not None and (spec.expires_at is None or spec.expires_at > by.expires_at):
        problems.append(
            {
                "field": "expires_at",
                "message": f"must be no later than this key's expiry, {by.expires_at.isoformat()}",
            }
        )
    if by.rate_limit is not None and (spec.rate_limit is None or spec.rate_limit > by.rate_limit):
        problems.append(
            {
                "field": "rate_limit_per_minute",
                "message": f"must be at most this key's, {by.rate_limit}",
            }
        )
    if problems:
        raise Forbidden(
            "A key may only create keys no broader than itself: "
            + "; ".join(f"`{p['field']}`: {p['message']}" for p in problems)
            + ".",
            details=problems,
        )


async def list_keys(
    session: AsyncSession, *, account_id: int
) -> list[tuple[ApiKey, datetime | None]]:
    """The account's keys, each with the last minute it was used in."""
    repo = AccountRepository(session)
    if await repo.get_account(account_id) is None:
        raise NotFound(f"Account {account_id} does not exist.")
    return await repo.keys_of(account_id)


async def get_key(session: AsyncSession, *, account_id: int, key_id: int) -> ApiKey:
    key = await AccountRepository(session).get_key(account_id, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found.")
    return key


async def revoke_key(
    session: AsyncSession,
    *,
    key_id: int,
    account_id: int | None = None,
    by: AuthenticatedAccount | None = None,
    request_id: str | None = None,
) -> ApiKey:
    """Revoke a key (of `account_id`, when given: over the API). Written to the audit trail."""
    repo = AccountRepository(session)
    if account_id is not None and await repo.get_key(account_id, key_id) is None:
        raise NotFound(f"API key {key_id} not found.")
    was_active = (key := await repo.get_key_any(key_id)) is not None and key.revoked_at is None
    key = await repo.revoke_key(key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist.")
    if was_active:
        await repo.add_audit(
            key.account_id,
            by.key_id if by is not None else None,
            "key.revoked",
            {"key_id": key.id, "prefix": key.prefix, "name": key.name},
            request_id,
        )
    return key


async def record_forbidden(
    session: AsyncSession,
    account: AuthenticatedAccount,
    *,
    method: str,
    path: str,
    reason: str,
    request_id: str | None,
) -> None:
    await AccountRepository(session).add_audit(
        account.id,
        account.key_id,
        "request.forbidden",
        {"method": method, "path": path, "reason": reason},
        request_id,
    )


async def audit_page(
    session: AsyncSession, *, account_id: int, offset: int, limit: int
) -> tuple[int, list[AuditEvent]]:
    return await AccountRepository(session).audit_page(account_id, offset=offset, limit=limit)


_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s`."""
    found = _DURATION.match(text.lower())
    if not found or int(found.group(1)) == 0:
        raise BadRequest(f"{text!r} is not a duration such as 30d, 12h, 90m or 2w.")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


async def resolve_key(session: AsyncSession, presented: str) -> AuthenticatedAccount | None:
    """The account owning this unrevoked key and what the key may do, or None. Digests are
    compared in constant time. An expired key is returned (the caller says it expired)."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_CHARS:
        return None
    digest = _hash(presented)
    found: AuthenticatedAccount | None = None
    for key, account in await AccountRepository(session).active_keys_with_prefix(
        presented[:LOOKUP_PREFIX_LEN]
    ):
        if hmac.compare_digest(key.key_hash, digest):
            found = AuthenticatedAccount(
                id=account.id,
                name=account.name,
                key_id=key.id,
                scopes=frozenset(key.scopes),
                data_items=None if key.data_items is None else frozenset(key.data_items),
                expires_at=key.expires_at,
                rate_limit=key.rate_limit_per_minute,
            )
    return found
