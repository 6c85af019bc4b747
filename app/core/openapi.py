"""OpenAPI helpers: error responses every route declares, readable operation ids."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.core.routing import API_PREFIX
from app.core.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "Invalid input: the message says what is wrong, `details` lists each problem.",
    401: "Missing, unknown, revoked or expired API key.",
    403: "The key may not do this: a scope it lacks (see the operation's `x-required-scope`), "
    "or an operation a key limited to some data items cannot use.",
    404: "No such resource for this account.",
    405: "Method not allowed on this path.",
    408: "The request body did not arrive in time (BODY_READ_TIMEOUT between two reads).",
    413: "Body larger than the configured limit.",
    429: "Too many requests for this key (RATE_LIMIT_PER_MINUTE); see `Retry-After`.",
    503: "The database is unavailable; retry.",
}

_RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per minute for this key (when a limit is set).",
    "X-RateLimit-Remaining": "Requests left in the current minute.",
    "X-RateLimit-Reset": "When the current minute ends, in Unix seconds.",
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

        def error(status: int) -> dict[str, Any]:
            return {
                "description": _DESCRIPTIONS[status],
                "content": {"application/json": {"schema": error_ref}},
            }

        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = error(400)
                if not path.startswith(API_PREFIX):
                    continue
                # What any API request may get besides its own answers: the rate limit, the
                # database being away, and for a body, its size limit and read timeout.
                statuses = [429, 503] + ([408, 413] if "requestBody" in operation else [])
                for status in statuses:
                    responses.setdefault(str(status), error(status))
                responses["429"].setdefault("headers", {})["Retry-After"] = {
                    "description": "Seconds until the key may send again.",
                    "schema": {"type": "integer"},
                }
                for code, response in responses.items():
                    if code.startswith("2") or code == "429":
                        response.setdefault("headers", {}).update(
                            {
                                name: {"description": text, "schema": {"type": "integer"}}
                                for name, text in _RATE_HEADERS.items()
                            }
                        )
        _document_api_keys(schema)
        _document_scopes(schema, error(403))
        components = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_api_keys(schema: dict[str, Any]) -> None:
    """Every /api/v1 operation takes the key as the `X-Api-Key` header or the `api_key` query
    parameter (app/accounts/dependencies.py checks it for every route, before the body is read,
    rather than as a dependency solved per request): the security schemes and requirements a
    `Security(...)` dependency on both would produce."""
    from fastapi.encoders import jsonable_encoder

    from app.accounts.dependencies import api_key_header, api_key_query

    schemes = (api_key_header, api_key_query)
    requirement: list[dict[str, list[str]]] = [{scheme.scheme_name: []} for scheme in schemes]
    used = False
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            operation.setdefault("security", requirement)
            used = True
    if used:
        security = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for scheme in schemes:
            security[scheme.scheme_name] = jsonable_encoder(
                scheme.model, by_alias=True, exclude_none=True
            )


def _document_scopes(schema: dict[str, Any], forbidden: dict[str, Any]) -> None:
    """Each /api/v1 operation's scope (app/accounts/scopes.py): `x-required-scope`, a line of
    its description, and the 403 a key without it gets."""
    from app.accounts.scopes import required_scope

    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            scope = required_scope(method.upper(), path)
            if scope is None:
                continue
            operation["x-required-scope"] = scope.value
            note = f"Scope: `{scope.value}`."
            text = operation.get("description", "")
            operation["description"] = f"{text}\n\n{note}" if text else note
            operation.setdefault("responses", {}).setdefault("403", forbidden)
