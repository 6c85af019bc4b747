"""Account, API-key and audit queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, ApiKey, ApiKeyUsage, AuditEvent, DataItem


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_account(self, name: str) -> Account:
        account = Account(name=name)
        self.session.add(account)
        await self.session.flush()
        return account

    async def get_account(self, account_id: int) -> Account | None:
        return await self.session.get(Account, account_id)

    async def list_accounts(self) -> list[Account]:
        return list((await self.session.scalars(select(Account).order_by(Account.id))).all())

    async def add_key(self, account_id: int, prefix: str, key_hash: bytes, **spec: Any) -> ApiKey:
        key = ApiKey(account_id=account_id, prefix=prefix, key_hash=key_hash, **spec)
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        return key

    async def keys_of(self, account_id: int) -> list[tuple[ApiKey, datetime | None]]:
        """The account's keys with the last minute each was used in (None: never, or not in
        the last two days of counts)."""
        last_used = (
            select(func.max(ApiKeyUsage.minute))
            .where(ApiKeyUsage.key_id == ApiKey.id, ApiKeyUsage.requests > 0)
            .scalar_subquery()
        )
        stmt = select(ApiKey, last_used).where(ApiKey.account_id == account_id).order_by(ApiKey.id)
        return [(key, used) for key, used in (await self.session.execute(stmt)).all()]

    async def get_key_any(self, key_id: int) -> ApiKey | None:
        """A key of any account (the operator's command line)."""
        return await self.session.get(ApiKey, key_id)

    async def get_key(self, account_id: int, key_id: int) -> ApiKey | None:
        key = await self.session.get(ApiKey, key_id)
        return key if key is not None and key.account_id == account_id else None

    async def existing_items(self, account_id: int, item_ids: Sequence[int]) -> set[int]:
        """Which of these ids are data items of the account."""
        stmt = select(DataItem.id).where(
            DataItem.account_id == account_id, DataItem.id.in_(list(item_ids))
        )
        return {int(i) for i in (await self.session.scalars(stmt)).all()}

    # -------------------------------------------------------------------------- audit

    async def add_audit(
        self,
        account_id: int,
        key_id: int | None,
        action: str,
        detail: dict[str, Any],
        request_id: str | None,
    ) -> None:
        self.session.add(
            AuditEvent(
                account_id=account_id,
                key_id=key_id or None,
                action=action,
                detail=detail,
                request_id=request_id,
            )
        )
        await self.session.flush()

    async def audit_page(
        self, account_id: int, *, offset: int, limit: int
    ) -> tuple[int, list[AuditEvent]]:
        total = int(
            (
                await self.session.execute(
                    select(func.count()).where(AuditEvent.account_id == account_id)
                )
            ).scalar_one()
        )
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.account_id == account_id)
            .order_by(AuditEvent.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return total, list((await self.session.scalars(stmt)).all())

    async def active_keys_with_prefix(self, prefix: str) -> list[tuple[ApiKey, Account]]:
        stmt = (
            select(ApiKey, Account)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        )
        return [(key, account) for key, account in (await self.session.execute(stmt)).all()]

    async def revoke_key(self, key_id: int) -> ApiKey | None:
        key = await self.session.get(ApiKey, key_id)
        if key is not None and key.revoked_at is None:
            await self.session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=datetime.now(UTC))
            )
            await self.session.refresh(key)
        return key
