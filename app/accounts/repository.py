"""Account and API-key queries."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, ApiKey


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

    async def add_key(self, account_id: int, prefix: str, key_hash: bytes) -> ApiKey:
        key = ApiKey(account_id=account_id, prefix=prefix, key_hash=key_hash)
        self.session.add(key)
        await self.session.flush()
        return key

    async def keys_of(self, account_id: int) -> list[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id)
        return list((await self.session.scalars(stmt)).all())

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
