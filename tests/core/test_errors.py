"""Every error path returns the JSON envelope {error, code, request_id[, details]} with the right
status; every response carries X-Request-ID; a 500 never leaks a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from starlette.types import Message, Scope

from app.main import create_app
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio


class RequestOptions(TypedDict, total=False):
    """The httpx request arguments the cases below use."""

    content: bytes
    json: Any
    headers: dict[str, str]


class TestEnvelope:
    @pytest.mark.parametrize(
        ("method", "path", "kwargs", "status", "code"),
        [
            ("GET", "/data-items/987654321/", {}, 404, "NOT_FOUND"),
            ("GET", "/no-such-thing/", {}, 404, "NOT_FOUND"),
            ("GET", "/no-such-thing", {}, 404, "NOT_FOUND"),
            ("PUT", "/data-items/", {}, 405, "METHOD_NOT_ALLOWED"),
            ("DELETE", "/data-items/", {}, 405, "METHOD_NOT_ALLOWED"),
            ("POST", "/data-items/", {"json": {}}, 400, "VALIDATION_ERROR"),
            ("POST", "/data-items/", {"json": []}, 400, "VALIDATION_ERROR"),
            ("POST", "/data-items/", {"json": {"data_name": "x", "extra": 1}}, 400, "VALIDATION_ERROR"),
            (
                "POST", "/data-items/",
                {"content": b'{"data_name": ', "headers": {"content-type": "application/json"}},
                400, "MALFORMED_JSON",
            ),
            (
                "POST", "/data-items/",
                {"content": b'{"data_name": NaN}', "headers": {"content-type": "application/json"}},
                400, "MALFORMED_JSON",
            ),
            (
                "POST", "/data-items/",
                {"content": b"\xff\xfe{", "headers": {"content-type": "application/json"}},
                400, "MALFORMED_JSON",
            ),
            (
                "POST", "/data-items/",
                {"content": b"[" * 100_000, "headers": {"content-type": "application/json"}},
                400, "MALFORMED_JSON",
            ),
            (
                "POST", "/data-items/",
                {"content": b"data_name=x", "headers": {"content-type": "text/plain"}},
                400, "UNSUPPORTED_MEDIA_TYPE",
            ),
            ("POST", "/data-items/", {"content": b'{"data_name": "x"}'}, 400, "UNSUPPORTED_MEDIA_TYPE"),
            ("GET", "/data-items/abc/", {}, 400, "VALIDATION_ERROR"),
        ],
    )  # fmt: skip
    async def test_error_paths(
        self, api: Caller, method: str, path: str, kwargs: RequestOptions, status: int, code: str
    ) -> None:
        response = await api.client.request(method, path, **kwargs)
        assert_error(response, status, code)

    async def test_405_names_the_allowed_methods(self, api: Caller) -> None:
        body = assert_error(await api.client.put("/data-items/"), 405)
        assert "GET" in body["error"] and "POST" in body["error"]

    async def test_validation_details_name_each_field(self, api: Caller) -> None:
        r = await api.client.post(
            "/data-items/",
            json={"data_name": "", "fields": [{"field_label": "A", "field_type": "x"}]},
        )
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert {d["field"] for d in body["details"]} == {"data_name", "fields.0.field_type"}
        assert all(d["message"] for d in body["details"])

    async def test_every_response_has_a_request_id_and_an_incoming_one_is_kept(
        self, api: Caller, client: httpx.AsyncClient
    ) -> None:
        assert (await client.get("/healthz")).headers["x-request-id"]
        ok = await api.client.get("/data-items/", headers={"X-Request-ID": "trace-123"})
        assert ok.headers["x-request-id"] == "trace-123"
        bad = await api.client.get("/data-items/", headers={"X-Request-ID": "bad id\n" * 10})
        assert bad.headers["x-request-id"] != "bad id"


class TestAuthComesFirst:
    async def test_missing_key_is_401(self, client: httpx.AsyncClient) -> None:
        body = assert_error(await client.get("/api/v1/data-items/"), 401, "UNAUTHORIZED")
        assert body["error"] == "Invalid or missing API key."

    @pytest.mark.parametrize(
        ("method", "path", "kwargs"),
        [
            ("GET", "/api/v1/data-items/987654321/", {}),
            ("GET", "/api/v1/nowhere/", {}),
            ("PUT", "/api/v1/data-items/", {}),
            ("POST", "/api/v1/data-items/", {"content": b"{bad", "headers": {"content-type": "application/json"}}),
            ("POST", "/api/v1/data-items/", {"json": {}}),
            ("GET", "/api/v1/data-items/abc/fields/", {}),
        ],
    )  # fmt: skip
    async def test_401_before_404_405_and_400(
        self, client: httpx.AsyncClient, method: str, path: str, kwargs: RequestOptions
    ) -> None:
        assert_error(await client.request(method, path, **kwargs), 401, "UNAUTHORIZED")

    async def test_unknown_and_malformed_keys_are_401(self, client: httpx.AsyncClient) -> None:
        for key in ("dik_" + "A" * 43, "nonsense", "dik_", "x" * 5000):
            r = await client.get("/api/v1/data-items/", headers={"X-Api-Key": key})
            assert_error(r, 401, "UNAUTHORIZED")

    async def test_query_parameter_key_works(self, api: Caller, client: httpx.AsyncClient) -> None:
        r = await client.get("/api/v1/data-items/", params={"api_key": api.api_key})
        assert r.status_code == 200

    async def test_revoked_key_is_401_within_the_cache_bound(
        self, api: Caller, app: FastAPI
    ) -> None:
        """Keys are answered from memory for AUTH_CACHE_SECONDS (tests/access/test_replicas.py
        checks the bound across processes)."""
        from app.accounts import service

        assert (await api.client.get("/data-items/")).status_code == 200
        async with app.state.sessionmaker() as session, session.begin():
            await service.revoke_key(session, key_id=api.key_id)
        await asyncio.sleep(app.state.settings.auth_cache_seconds)
        assert_error(await api.client.get("/data-items/"), 401, "UNAUTHORIZED")

    async def test_second_key_of_an_account_sees_the_same_data(
        self, api: Caller, app: FastAPI
    ) -> None:
        from app.accounts import service

        item = await create_item(api.client, "Shared")
        async with app.state.sessionmaker() as session, session.begin():
            issued = await service.issue_key(session, account_id=api.account_id)
        r = await api.client.get(
            f"/data-items/{item['id']}/", headers={"X-Api-Key": issued.api_key}
        )
        assert r.status_code == 200 and r.json()["id"] == item["id"]


@pytest_asyncio.fixture
async def tiny_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(max_upload_bytes=2_000, max_json_bytes=1_000), database_url=database_url
    )

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    async with application.router.lifespan_context(application):
        yield application


class TestLimitsAndFailures:
    async def test_declared_content_length_over_the_limit_is_413(
        self, tiny_app: FastAPI, api: Caller
    ) -> None:
        transport = httpx.ASGITransport(app=tiny_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            r = await c.post(
                "/data-items/", json={"data_name": "x" * 2000}, headers={"X-Api-Key": api.api_key}
            )
        body = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert "1,000 bytes" in body["error"]

    async def test_streamed_body_without_length_is_counted(
        self, tiny_app: FastAPI, api: Caller
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"data_name": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        transport = httpx.ASGITransport(app=tiny_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            r = await c.post(
                "/data-items/",
                content=chunks(),
                headers={"X-Api-Key": api.api_key, "content-type": "application/json"},
            )
        assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert (await api.client.get("/data-items/")).json()["data_items"] == []

    async def test_understated_content_length_does_not_raise_the_limit(
        self, tiny_app: FastAPI, api: Caller
    ) -> None:
        payload = b'{"data_name": "' + b"y" * 1500 + b'"}'
        sent: list[dict[str, object]] = []

        async def receive() -> Message:
            if sent:
                return {"type": "http.disconnect"}
            sent.append({})
            return {"type": "http.request", "body": payload, "more_body": False}

        messages: list[Message] = []

        async def send(message: Message) -> None:
            messages.append(message)

        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/api/v1/data-items/", "raw_path": b"/api/v1/data-items/",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("t", 80),
            "headers": [
                (b"content-type", b"application/json"), (b"content-length", b"10"),
                (b"x-api-key", api.api_key.encode()),
            ],
        }  # fmt: skip
        await tiny_app(scope, receive, send)
        assert messages[0]["status"] == 413

    async def test_multipart_gets_the_upload_limit(self, tiny_app: FastAPI, api: Caller) -> None:
        transport = httpx.ASGITransport(app=tiny_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
            r = await c.post(
                "/data-items/",
                files={"data_file": ("a.csv", b"a,b\n" * 1000)},
                headers={"X-Api-Key": api.api_key},
            )
        body = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert "2,000 bytes" in body["error"] and "upload" in body["error"]

    async def test_unexpected_exception_is_a_json_500_without_internals(
        self, tiny_app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        transport = httpx.ASGITransport(app=tiny_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/boom")
        body = assert_error(r, 500, "INTERNAL_ERROR")
        assert "hunter2" not in r.text and "Traceback" not in r.text
        logged = [rec for rec in caplog.records if rec.name == "app.error"]
        assert logged and logged[0].exc_info is not None  # the traceback is logged, not sent
        assert vars(logged[0])["request_id"] == body["request_id"]  # (set by `extra=`)


class TestAccessLog:
    async def test_one_line_per_request_with_the_key_redacted(
        self, api: Caller, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("INFO", logger="app.access")
        r = await client.get("/api/v1/data-items/", params={"api_key": api.api_key, "q": "1"})
        assert r.status_code == 200
        lines = [rec for rec in caplog.records if rec.name == "app.access"]
        assert len(lines) == 1
        record = lines[0]
        assert api.api_key not in caplog.text
        assert "api_key=[redacted]" in record.getMessage() and "q=1" in record.getMessage()
        fields = vars(record)  # (set by `extra=`)
        assert fields["status"] == 200 and fields["method"] == "GET"
        assert fields["duration_ms"] >= 0

    async def test_json_format_is_one_json_object_per_line(self) -> None:
        import json
        import logging

        from app.core.logging import JsonFormatter

        record = logging.LogRecord("app.access", logging.INFO, __file__, 1, "GET / 200", None, None)
        record.status = 200
        record.request_id = "abc"
        line = JsonFormatter().format(record)
        parsed = json.loads(line)
        assert parsed["message"] == "GET / 200" and parsed["status"] == 200
        assert parsed["request_id"] == "abc" and parsed["level"] == "INFO"
