"""OpenAPI helpers: error responses every route declares, readable operation ids."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
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


def install_openapi(app: FastAPI) -> None:
    """The generated schema, minus FastAPI's automatic 422 responses: validation errors here are
    400 with the error body, and the schema must say so."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = {
                        "description": _DESCRIPTIONS[400],
                        "content": {"application/json": {"schema": error_ref}},
                    }
        components = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
