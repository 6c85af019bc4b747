"""Share link bodies: what a new link asks for, the link (shown once), and the list."""

from __future__ import annotations

from pydantic import AwareDatetime, ConfigDict, Field

from app.core.schemas import InputSchema, Schema, Timestamp


class ShareCreate(InputSchema):
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the link stops working: a time in the future, with its time zone. "
        "Left out (or null): the link works until it is revoked.",
        examples=["2027-01-31T00:00:00Z"],
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"expires_at": "2027-01-31T00:00:00Z"}, {}]}
    )


class ShareRead(Schema):
    id: int = Field(examples=[5])
    dashboard_id: int = Field(examples=[3])
    expires_at: Timestamp | None = Field(examples=["2027-01-31T00:00:00+00:00"])
    created_at: Timestamp
    revoked_at: Timestamp | None = Field(
        default=None, examples=[None], description="When the link was revoked; null if it was not."
    )
    active: bool = Field(
        examples=[True], description="Whether the link's page shows the dashboard now."
    )


class ShareCreated(Schema):
    id: int = Field(examples=[5])
    url: str = Field(
        description="The page, as a path from the service's root (behind a gateway, its prefix "
        "included): prepend the scheme and host the service is reached at. It holds the link's "
        "secret token and is shown only in this answer.",
        examples=["/s/q3vT0aB1c2d3e4f5g6h7i8j9k0lmnopqrstuvwxyz12"],
    )
    expires_at: Timestamp | None = Field(examples=["2027-01-31T00:00:00+00:00"])
    created_at: Timestamp


class ShareList(Schema):
    total: int = Field(examples=[1], description="How many links the dashboard has in all.")
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[100])
    shares: list[ShareRead] = Field(description="Newest first; never their tokens.")
