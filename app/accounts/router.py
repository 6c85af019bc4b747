"""Keys over the API (create, list, read, revoke) and the audit trail: the `admin` scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query, status

from app.accounts import service
from app.accounts.dependencies import AccountDep, AuthenticatedRoute, KeyCacheDep
from app.accounts.schemas import AuditEventRead, AuditList, KeyCreate, KeyCreated, KeyList, KeyRead
from app.accounts.service import KeySpec
from app.core.db import SessionDep
from app.core.deps import RequestIdDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.models import ApiKey

keys_router = ApiRouter(prefix="/keys", tags=["keys"], route_class=AuthenticatedRoute)
audit_router = ApiRouter(prefix="/audit", tags=["keys"], route_class=AuthenticatedRoute)

KeyId = Annotated[int, Path(ge=1, le=2**63 - 1, description="API key id.", examples=[12])]


def _read(key: ApiKey, last_used: datetime | None = None) -> KeyRead:
    return KeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        data_items=None if key.data_items is None else list(key.data_items),
        expires_at=key.expires_at,
        rate_limit_per_minute=key.rate_limit_per_minute,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=last_used,
        expired=key.expires_at is not None and key.expires_at <= datetime.now(UTC),
    )


@keys_router.post(
    "/",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (its secret is shown once)",
    description=(
        "A key no broader than the calling one: no scope it lacks, no item it does not see, no "
        "later expiry, no higher rate limit (else 403). The secret is in `api_key`, in this "
        "answer only; only its hash is stored."
    ),
    responses=errors(400, 401, 403),
)
async def create_key(
    payload: KeyCreate,
    session: SessionDep,
    account: AccountDep,
    request_id: RequestIdDep,
) -> KeyCreated:
    expires = payload.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    issued = await service.issue_key(
        session,
        account_id=account.id,
        spec=KeySpec(
            name=payload.name.strip(),
            scopes=frozenset(s.value for s in payload.scopes),
            data_items=None if payload.data_items is None else frozenset(payload.data_items),
            expires_at=expires,
            rate_limit=payload.rate_limit_per_minute,
        ),
        by=account,
        request_id=request_id,
    )
    assert issued.key is not None
    return KeyCreated(**_read(issued.key).model_dump(), api_key=issued.api_key)


@keys_router.get(
    "/",
    response_model=KeyList,
    summary="The account's API keys (never their secrets)",
    responses=errors(401, 403),
)
async def list_keys(session: SessionDep, account: AccountDep) -> KeyList:
    keys = await service.list_keys(session, account_id=account.id)
    return KeyList(keys=[_read(key, used) for key, used in keys])


@keys_router.get(
    "/{key_id}/",
    response_model=KeyRead,
    summary="One API key",
    responses=errors(400, 401, 403, 404),
)
async def get_key(key_id: KeyId, session: SessionDep, account: AccountDep) -> KeyRead:
    return _read(await service.get_key(session, account_id=account.id, key_id=key_id))


@keys_router.delete(
    "/{key_id}/",
    response_model=KeyRead,
    summary="Revoke an API key (answers it, with `revoked_at`)",
    description=(
        "Refused from then on: at once by the process answering, by every other replica "
        "within AUTH_CACHE_SECONDS (1 s by default)."
    ),
    responses=errors(400, 401, 403, 404),
)
async def revoke_key(
    key_id: KeyId,
    session: SessionDep,
    account: AccountDep,
    cache: KeyCacheDep,
    request_id: RequestIdDep,
) -> KeyRead:
    key = await service.revoke_key(
        session, key_id=key_id, account_id=account.id, by=account, request_id=request_id
    )
    cache.forget(key.id)  # (this process at once; the others within AUTH_CACHE_SECONDS)
    return _read(key)


@audit_router.get(
    "/",
    response_model=AuditList,
    summary="The account's audit trail, newest first",
    description="Keys created and revoked, and every request refused for lack of a scope (403).",
    responses=errors(400, 401, 403),
)
async def list_audit(
    session: SessionDep,
    account: AccountDep,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Events to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Events per page, 1 to 500.")] = 50,
) -> AuditList:
    total, events = await service.audit_page(
        session, account_id=account.id, offset=offset, limit=limit
    )
    return AuditList(
        total=total,
        offset=offset,
        limit=limit,
        events=[AuditEventRead.model_validate(e) for e in events],
    )
