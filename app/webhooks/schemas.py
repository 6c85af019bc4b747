"""Webhook request and response bodies, and the events a webhook can subscribe to."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from app.core.schemas import InputSchema, Schema, Timestamp


class WebhookEvent(StrEnum):
    IMPORT_SUCCEEDED = "import.succeeded"
    IMPORT_FAILED = "import.failed"
    DATA_ITEM_CREATED = "data_item.created"
    DATA_ITEM_ROWS_APPENDED = "data_item.rows_appended"
    DATA_ITEM_DELETED = "data_item.deleted"


# Sent by POST /webhooks/{id}/ping/ to that webhook only; not subscribable.
PING_EVENT = "ping"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookCreate(InputSchema):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description=(
            "Where deliveries are POSTed: an http(s) URL without credentials or fragment. "
            "Non-public addresses are refused unless the operator allows them."
        ),
        examples=["https://hooks.example.com/data-items"],
    )
    events: list[WebhookEvent] = Field(
        min_length=1,
        max_length=len(WebhookEvent),
        description="The events to receive (duplicates are ignored).",
        examples=[["import.succeeded", "import.failed"]],
    )
    description: str = Field(default="", max_length=1000, examples=["Ops notifications"])

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[WebhookEvent]) -> list[WebhookEvent]:
        return list(dict.fromkeys(value))


class WebhookRead(Schema):
    id: int = Field(examples=[3])
    url: str = Field(examples=["https://hooks.example.com/data-items"])
    events: list[WebhookEvent]
    description: str = Field(examples=["Ops notifications"])
    created_at: Timestamp
    legacy_signature: bool = Field(
        examples=[False],
        description=(
            "True for webhooks created before Standard Webhooks signatures: their deliveries "
            "also carry the older X-Signature (HMAC-SHA256 of the body alone, keyed with the "
            "secret string), for receivers that still check it."
        ),
    )


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description=(
            "Signs every delivery, the Standard Webhooks way: `whsec_` + base64 of the 32 key "
            "bytes. Give it as it is to a Standard Webhooks library. Shown only in this "
            "response: keep it."
        ),
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/fGuwHqOVS8="],
    )


class WebhookList(Schema):
    webhooks: list[WebhookRead]


class DeliveryAttempt(Schema):
    attempt: int = Field(examples=[1])
    at: Timestamp
    response_code: int | None = Field(examples=[500], description="None if no response came.")
    error: str | None = Field(examples=["HTTP 500 from the receiver"])
    duration_ms: int = Field(examples=[35])


class DeliveryRead(Schema):
    id: int = Field(
        examples=[81],
        description="Sent as X-Delivery-Id, and as `webhook-id` with a `msg_` prefix (msg_81).",
    )
    event: str = Field(examples=["import.succeeded"])
    event_id: str = Field(examples=["evt_4f7c0d2b9a1e4e7f8c3b2a1d0e9f8a7b"])
    status: DeliveryStatus
    attempts: int = Field(examples=[2], description="Attempts made so far.")
    response_code: int | None = Field(
        examples=[200], description="The last attempt's HTTP status, if a response came."
    )
    error: str | None = Field(examples=[None], description="The last attempt's problem, if any.")
    next_attempt_at: Timestamp | None = Field(
        description="When the next attempt is due (pending deliveries only)."
    )
    created_at: Timestamp
    delivered_at: Timestamp | None
    history: list[DeliveryAttempt] = Field(description="Every attempt, oldest first.")
    payload: dict[str, Any] = Field(description="The JSON body sent.")


class DeliveryList(Schema):
    total: int = Field(examples=[12])
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[20])
    deliveries: list[DeliveryRead]


class PingResult(Schema):
    delivery_id: int = Field(examples=[82])
    event_id: str = Field(examples=["evt_0b9a1e4e7f8c3b2a1d0e9f8a7b4f7c0d"])
