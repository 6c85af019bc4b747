"""Webhook signing secrets at rest: encrypted with Fernet when the operator sets
WEBHOOK_SECRET_KEY, stored as is otherwise.

Signing needs the secret itself (HMAC), so it cannot be hashed like an API key; with a key set, a
copy of the database (a backup, a replica, a leaked dump) no longer signs deliveries.

- Stored form: `fernet:<token>` when encrypted, the plain `whsec_…` otherwise. Both may be present
  at once (a key set on a database with older plain secrets), and both are read.
- WEBHOOK_SECRET_KEY holds one or more Fernet keys, comma-separated. The first encrypts; every one
  decrypts (rotation: put the new key first, keep the old one after it until every secret has been
  re-encrypted, then drop it).
- At start-up (and with `python -m app webhooks encrypt-secrets`), plain secrets are encrypted
  with the first key and secrets encrypted with a later key are re-encrypted with the first; each
  row is updated only if it still holds what was read, so replicas doing it at once agree.
- A secret that cannot be decrypted (the key is not set, or is not the one it was encrypted with)
  never stops the service: its webhook's deliveries fail, each attempt with an error saying why,
  logged, and retried as usual, so setting the right key in time delivers them.
- `python -m app webhooks decrypt-secrets` stores them plain again (before removing the key).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from app.core.config import Settings

ENCRYPTED_PREFIX = "fernet:"

log = logging.getLogger("app.webhooks")


class SecretUnavailable(Exception):
    """A stored secret cannot be read with the configured key(s). The message says why."""


def parse_keys(value: str) -> list[Fernet]:
    """The Fernet keys of a WEBHOOK_SECRET_KEY value; ValueError naming a bad one (by position,
    never by value)."""
    keys = [part.strip() for part in value.split(",")]
    if not any(keys):
        return []
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ValueError(
                f"key {position} of {len(keys)} is not a Fernet key (32 bytes in URL-safe "
                "base64, 44 characters); make one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`'
            ) from None
    return fernets


class SecretBox:
    def __init__(self, keys: list[Fernet]) -> None:
        self._primary = keys[0] if keys else None
        self._all = MultiFernet(keys) if keys else None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        value = settings.webhook_secret_key
        return cls(parse_keys(value.get_secret_value()) if value is not None else [])

    @property
    def encrypting(self) -> bool:
        return self._primary is not None

    def seal(self, secret: str) -> str:
        """The stored form of a new secret."""
        if self._primary is None:
            return secret
        return ENCRYPTED_PREFIX + self._primary.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret itself; SecretUnavailable if it is encrypted and cannot be decrypted."""
        if not stored.startswith(ENCRYPTED_PREFIX):
            return stored
        if self._all is None:
            raise SecretUnavailable(
                "the webhook's signing secret is encrypted, and WEBHOOK_SECRET_KEY is not set; "
                "set it to the key the secrets were encrypted with"
            )
        try:
            return self._all.decrypt(stored[len(ENCRYPTED_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                "the webhook's signing secret cannot be decrypted with WEBHOOK_SECRET_KEY (it "
                "was encrypted with another key); add that key to WEBHOOK_SECRET_KEY, after the "
                "current one"
            ) from None

    def resealed(self, stored: str) -> str | None:
        """The stored form under the first key, or None if `stored` already is that.
        SecretUnavailable if it cannot be decrypted."""
        if self._primary is None:
            return None
        if stored.startswith(ENCRYPTED_PREFIX):
            try:
                self._primary.decrypt(stored[len(ENCRYPTED_PREFIX) :].encode())
                return None
            except InvalidToken:
                pass
        return self.seal(self.open(stored))


@dataclass(frozen=True)
class Rewritten:
    """What a pass over the stored secrets did."""

    changed: int  # rows rewritten (encrypted, re-encrypted or decrypted)
    unreadable: int  # encrypted secrets none of the keys decrypts
    total: int


async def _rewrite(engine: AsyncEngine, box: SecretBox, *, decrypt: bool) -> Rewritten:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, secret FROM webhooks ORDER BY id"))).all()
    changed = unreadable = 0
    for row in rows:
        try:
            new = box.open(row.secret) if decrypt else box.resealed(row.secret)
        except SecretUnavailable:
            unreadable += 1
            continue
        if new is None or new == row.secret:
            continue
        async with engine.begin() as conn:
            result = await conn.execute(
                text("UPDATE webhooks SET secret = :new WHERE id = :id AND secret = :old"),
                {"new": new, "id": row.id, "old": row.secret},
            )
        changed += int(result.rowcount or 0)
    return Rewritten(changed=changed, unreadable=unreadable, total=len(rows))


async def encrypt_stored(engine: AsyncEngine, box: SecretBox) -> Rewritten:
    """Encrypt plain secrets with the first key, re-encrypt those under a later key."""
    return await _rewrite(engine, box, decrypt=False)


async def decrypt_stored(engine: AsyncEngine, box: SecretBox) -> Rewritten:
    """Store every secret plain again (those the keys can decrypt)."""
    return await _rewrite(engine, box, decrypt=True)


async def seal_at_start(engine: AsyncEngine, box: SecretBox) -> None:
    """The start-up step: with a key set, encrypt what is not yet encrypted with it; never fails
    the start (a problem is logged, and deliveries say what is wrong)."""
    if not box.encrypting:
        return
    try:
        done = await encrypt_stored(engine, box)
    except Exception:
        log.warning("could not encrypt the stored webhook secrets; will try at the next start",
                    exc_info=True)  # fmt: skip
        return
    if done.changed:
        log.info("encrypted %d stored webhook secret(s) with WEBHOOK_SECRET_KEY", done.changed)
    if done.unreadable:
        log.error(
            "%d of %d stored webhook secrets cannot be decrypted with WEBHOOK_SECRET_KEY (they "
            "were encrypted with a key it does not list): their webhooks' deliveries fail until "
            "that key is added to WEBHOOK_SECRET_KEY",
            done.unreadable,
            done.total,
        )
