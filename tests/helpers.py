"""Small helpers for HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error with the JSON envelope; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str), body
    if code is not None:
        assert body["code"] == code, body
    assert body.get("request_id") == response.headers["x-request-id"], body
    return body


async def create_item(
    client: httpx.AsyncClient, name: str = "Sales", fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"data_name": name}
    if fields is not None:
        payload["fields"] = fields
    response = await client.post("/data-items/", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
