"""Webhooks: register a URL for events, list and delete them, see their recent deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import SettingsDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult, ErrorBody
from app.webhooks import service
from app.webhooks.dependencies import WebhookDep
from app.webhooks.schemas import (
    DeliveryList,
    PingResult,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
)
from app.webhooks.vault import SecretBox

router = ApiRouter(prefix="/webhooks", tags=["webhooks"], route_class=AuthenticatedRoute)


@router.post(
    "/",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook (its signing secret is shown once, here)",
    description=(
        "Events are POSTed to `url` as JSON `{event, id, created_at, data}`, signed the "
        "Standard Webhooks way (https://www.standardwebhooks.com): `webhook-id`, "
        "`webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "
        '"id.timestamp.body">` keyed with the secret\'s base64-decoded bytes, so any Standard '
        "Webhooks library verifies them. A non-2xx answer, a timeout or a connection failure is "
        "retried with exponential backoff. Delivery is at least once: drop repeats by "
        "`webhook-id`, the same on every attempt. URLs must be http(s) and, unless the operator "
        "allows otherwise, reach public addresses."
    ),
    responses=errors(400, 401, 413),
)
async def create_webhook(
    payload: WebhookCreate, session: SessionDep, account: AccountDep, settings: SettingsDep
) -> WebhookCreated:
    return await service.create_webhook(
        session,
        account,
        payload,
        allow_private=settings.webhook_allow_private_addresses,
        secret_box=SecretBox.from_settings(settings),
    )


@router.get("/", response_model=WebhookList, summary="List your webhooks", responses=errors(401))
async def list_webhooks(session: SessionDep, account: AccountDep) -> WebhookList:
    return await service.list_webhooks(session, account)


@router.get(
    "/{webhook_id}/",
    response_model=WebhookRead,
    summary="Get a webhook (without its secret)",
    responses=errors(400, 401, 404),
)
async def get_webhook(webhook: WebhookDep) -> WebhookRead:
    return service.webhook_read(webhook)


@router.delete(
    "/{webhook_id}/",
    response_model=DeletedResult,
    summary="Delete a webhook; its pending deliveries are dropped",
    responses=errors(400, 401, 404),
)
async def delete_webhook(
    webhook: WebhookDep, session: SessionDep, account: AccountDep
) -> DeletedResult:
    await service.delete_webhook(session, account, webhook)
    return DeletedResult(deleted=True)


@router.get(
    "/{webhook_id}/deliveries/",
    response_model=DeliveryList,
    summary="A webhook's recent deliveries and their attempts, newest first",
    responses=errors(400, 401, 404),
)
async def list_deliveries(
    webhook: WebhookDep,
    session: SessionDep,
    account: AccountDep,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Deliveries to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Deliveries per page, 1 to 100.")] = 20,
) -> DeliveryList:
    return await service.list_deliveries(session, account, webhook, offset=offset, limit=limit)


@router.post(
    "/{webhook_id}/ping/",
    response_model=PingResult,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a test event (`ping`) to the webhook",
    description=(
        "Queues one signed `ping` delivery to this webhook; see it under deliveries. An account "
        "may have at most WEBHOOK_MAX_PENDING_PER_ACCOUNT deliveries pending: past it, a 429."
    ),
    responses={
        **errors(400, 401, 404),
        429: {
            "model": ErrorBody,
            "description": (
                "Too many requests for this key, or too many webhook deliveries pending for "
                "your account (WEBHOOK_MAX_PENDING_PER_ACCOUNT); see `Retry-After`."
            ),
        },
    },
)
async def ping_webhook(webhook: WebhookDep, session: SessionDep, account: AccountDep) -> PingResult:
    return await service.ping(session, account, webhook)
