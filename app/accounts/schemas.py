"""Key and audit bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from app.accounts.scopes import Scope
from app.core.schemas import InputSchema, Schema

ItemId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class KeyCreate(InputSchema):
    name: str = Field(max_length=200, examples=["dashboard reader"])
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=4,
        description="What the key may do: read, write (rows, fields, uploads), manage (items, "
        "widgets, webhooks), admin (keys, audit). No broader than the key creating it.",
        examples=[["read"]],
    )
    data_items: list[ItemId] | None = Field(
        default=None,
        min_length=1,
        max_length=1_000,
        description="Limit the key to these data items: others answer 404, and it cannot "
        "create items. Left out: every item of the account.",
        examples=[[42]],
    )
    expires_at: datetime | None = Field(
        default=None,
        description="When the key stops working (with a time zone); left out: never.",
        examples=["2027-01-31T00:00:00Z"],
    )
    rate_limit_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Requests per minute for this key, instead of RATE_LIMIT_PER_MINUTE.",
        examples=[60],
    )


class KeyRead(Schema):
    id: int = Field(examples=[12])
    name: str = Field(examples=["dashboard reader"])
    prefix: str = Field(examples=["dik_Xq3vT0aB"], description="The key's first characters.")
    scopes: list[str] = Field(examples=[["read"]])
    data_items: list[int] | None = Field(examples=[[42]])
    expires_at: datetime | None = Field(examples=["2027-01-31T00:00:00Z"])
    rate_limit_per_minute: int | None = Field(examples=[60])
    created_at: datetime
    revoked_at: datetime | None = Field(default=None, examples=[None])
    last_used_at: datetime | None = Field(
        default=None, description="The last minute the key was used in (the last two days)."
    )
    expired: bool = Field(default=False, examples=[False])


class KeyCreated(KeyRead):
    api_key: str = Field(
        description="The secret, shown once: store it now.",
        examples=["dik_Xq3vT0aB1c2d3e4f5g6h7i8j9k0lmnopqrstuvwxyz1"],
    )


class KeyList(Schema):
    keys: list[KeyRead]


class AuditEventRead(Schema):
    id: int = Field(examples=[301])
    action: str = Field(
        examples=["request.forbidden"],
        description="key.created, key.revoked or request.forbidden.",
    )
    key_id: int | None = Field(examples=[12], description="The key that acted.")
    detail: dict[str, Any] = Field(
        examples=[{"method": "POST", "path": "/api/v1/data-items/", "reason": "needs scope manage"}]
    )
    request_id: str | None = Field(examples=["7b1f0c9e2d4a4f7e"])
    created_at: datetime


class AuditList(Schema):
    total: int = Field(examples=[1])
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[50])
    events: list[AuditEventRead]
