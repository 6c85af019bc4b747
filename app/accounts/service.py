"""Accounts and API keys: issuing, listing, revoking, and resolving a presented key.

A key is `dik_` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored,
with its first 12 characters as a lookup prefix; the full key is shown once, when it is created.
SHA-256 (not a slow password hash) is right here: the key has 256 bits of entropy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.repository import AccountRepository
from app.core.errors import BadRequest, NotFound
from app.models import Account, ApiKey

KEY_PREFIX = "dik_"
LOOKUP_PREFIX_LEN = 12
MAX_KEY_CHARS = 200  # longer is never a key: refused without a lookup


@dataclass(frozen=True)
class AuthenticatedAccount:
    """The caller, as resolved from its API key (plain data: not bound to any session)."""

    id: int
    name: str
    key_id: int


@dataclass(frozen=True)
class IssuedKey:
    account_id: int
    key_id: int
    api_key: str


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_account(session: AsyncSession, *, name: str) -> tuple[Account, IssuedKey]:
    name = name.strip()
    if not name:
        raise BadRequest("The account name must not be empty.")
    repo = AccountRepository(session)
    account = await repo.create_account(name)
    issued = await issue_key(session, account_id=account.id)
    return account, issued


async def issue_key(session: AsyncSession, *, account_id: int) -> IssuedKey:
    repo = AccountRepository(session)
    if await repo.get_account(account_id) is None:
        raise NotFound(f"Account {account_id} does not exist.")
    key = _new_key()
    row = await repo.add_key(account_id, key[:LOOKUP_PREFIX_LEN], _hash(key))
    return IssuedKey(account_id=account_id, key_id=row.id, api_key=key)


async def list_keys(session: AsyncSession, *, account_id: int) -> list[ApiKey]:
    repo = AccountRepository(session)
    if await repo.get_account(account_id) is None:
        raise NotFound(f"Account {account_id} does not exist.")
    return await repo.keys_of(account_id)


async def revoke_key(session: AsyncSession, *, key_id: int) -> ApiKey:
    key = await AccountRepository(session).revoke_key(key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist.")
    return key


async def resolve_key(session: AsyncSession, presented: str) -> AuthenticatedAccount | None:
    """The account owning this active key, or None. Digests are compared in constant time."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_CHARS:
        return None
    digest = _hash(presented)
    found: AuthenticatedAccount | None = None
    for key, account in await AccountRepository(session).active_keys_with_prefix(
        presented[:LOOKUP_PREFIX_LEN]
    ):
        if hmac.compare_digest(key.key_hash, digest):
            found = AuthenticatedAccount(id=account.id, name=account.name, key_id=key.id)
    return found
