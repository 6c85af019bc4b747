"""OpenAPI helpers: error responses every route declares, readable operation ids."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from app.core.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "Invalid input: the message says what is wrong, `details` lists each problem.",
    401: "Missing or unknown API key.",
    404: "No such resource for this account.",
    405: "Method not allowed on this path.",
    413: "Body larger than the configured limit.",
    429: "Too many requests for this key.",
    503: "The database is unavailable; retry.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the given 4xx/5xx statuses with the error body schema."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


def operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}".replace(" ", "_")
