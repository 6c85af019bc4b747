"""Standard Webhooks signatures, checked as receivers check them: with the `standardwebhooks`
reference library from PyPI and with the API guide's few lines of plain HMAC. Replays, webhooks
created before (X-Signature, migration 0010), and secrets encrypted at rest under
WEBHOOK_SECRET_KEY: at creation, at start-up, rotation, a missing or wrong key, the CLI."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from app.core.migrate import alembic_config
from app.main import create_app
from app.models import Webhook
from app.webhooks.signing import new_secret, signature_headers
from app.webhooks.vault import SecretBox, decrypt_stored
from tests.conftest import Caller, make_settings
from tests.fixtures.database import _create_database, _drop_database, _plain_dsn
from tests.helpers import create_item
from tests.webhooks.conftest import HOOK_SETTINGS, caller_on
from tests.webhooks.receiver import Received, Reply, receiving
from tests.webhooks.test_delivery import settled, subscribe

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


async def ping(api: Caller, webhook_id: int) -> None:
    r = await api.client.post(f"/webhooks/{webhook_id}/ping/")
    assert r.status_code == 202, r.text


async def delivered(api: Caller) -> tuple[dict[str, Any], Received]:
    """A webhook to a receiver, and the request it got for an event."""
    async with receiving() as receiver:
        hook = await subscribe(api, receiver.url, "data_item.created")
        await create_item(api.client, "Signed")
        (request,) = await receiver.wait_for(1)
    return hook, request


class TestStandardWebhooks:
    async def test_deliveries_verify_with_the_standard_webhooks_library(
        self, hooks: Caller
    ) -> None:
        hook, request = await delivered(hooks)
        [record] = await settled(hooks, hook["id"])
        secret = hook["secret"]
        # the spec's serialisation: whsec_ + base64 (standard alphabet, padded) of the key
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        payload = Verifier(secret).verify(request.body, request.headers)
        assert payload == record["payload"] == request.json()
        assert request.headers["webhook-id"] == f"msg_{record['id']}"
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
        assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", request.headers["webhook-signature"])
        with pytest.raises(WebhookVerificationError):
            Verifier(new_secret()).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Verifier(secret).verify(request.body + b" ", request.headers)

    async def test_every_attempt_is_signed_and_keeps_its_id(self, hooks: Caller) -> None:
        async with receiving([Reply(500), Reply(503)]) as receiver:
            hook = await subscribe(hooks, receiver.url, "data_item.created")
            await create_item(hooks.client)
            received = await receiver.wait_for(3)
            [record] = await settled(hooks, hook["id"])
        assert record["status"] == "succeeded"
        assert {r.headers["webhook-id"] for r in received} == {f"msg_{record['id']}"}
        for request in received:
            Verifier(hook["secret"]).verify(request.body, request.headers)
            assert request.signature_ok(hook["secret"])

    async def test_a_replayed_delivery_is_refused(self, hooks: Caller) -> None:
        hook, captured = await delivered(hooks)
        secret, verifier = hook["secret"], Verifier(hook["secret"])
        verifier.verify(captured.body, captured.headers)  # fresh: accepted
        msg_id, ts = captured.headers["webhook-id"], int(captured.headers["webhook-timestamp"])

        # The service's signing reproduces the capture exactly from (secret, id, timestamp, body)
        again = signature_headers(secret, message_id=msg_id, body=captured.body, timestamp=ts)
        assert again == {name: captured.headers[name] for name in again}
        # ... so this is the same delivery as the service sent it ten minutes earlier, replayed
        # now: refused as too old.
        earlier = signature_headers(
            secret, message_id=msg_id, body=captured.body, timestamp=ts - 600
        )
        with pytest.raises(WebhookVerificationError, match="too old"):
            verifier.verify(captured.body, {**captured.headers, **earlier})
        # A replayer cannot bring the timestamp up to date: it is signed.
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            verifier.verify(captured.body, {**captured.headers, "webhook-timestamp": str(ts + 1)})
        # Nor reuse the signature for another body or another id.
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            verifier.verify(b'{"event":"ping"}', captured.headers)
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            verifier.verify(captured.body, {**captured.headers, "webhook-id": "msg_1"})

    async def test_the_api_guide_receivers_verify_a_real_delivery(self, hooks: Caller) -> None:
        hook, request = await delivered(hooks)
        guide = (ROOT / "docs" / "api-guide.md").read_text()
        section = guide[guide.index("\n## Webhooks\n") :]
        section = section.split("\n## ", 2)[1]  # up to the next section, if any
        blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
        namespace: dict[str, Any] = {"SECRET": hook["secret"]}
        for block in blocks:
            exec(block, namespace)  # the examples as a reader would paste them
        assert namespace["receive"](request.body, request.headers) == request.json()
        assert namespace["verified"](hook["secret"], request.body, request.headers)
        assert not namespace["verified"](new_secret(), request.body, request.headers)
        stale = {**request.headers, "webhook-timestamp": str(int(time.time()) - 600)}
        assert not namespace["verified"](hook["secret"], request.body, stale)
        with pytest.raises(WebhookVerificationError):
            namespace["receive"](request.body, stale)

    async def test_a_webhook_from_before_keeps_x_signature(
        self, hooks: Caller, hook_app: FastAPI
    ) -> None:
        # a secret as they were made before: URL-safe base64 without padding (here with - and _)
        legacy = "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode().rstrip("=")
        assert "-" in legacy and "_" in legacy
        async with receiving() as receiver:
            async with hook_app.state.sessionmaker() as session, session.begin():
                webhook = Webhook(
                    account_id=hooks.account_id,
                    url=receiver.url,
                    events=["import.failed"],
                    secret=legacy,
                    legacy_signature=True,  # as migration 0010 marks the webhooks it finds
                )
                session.add(webhook)
                await session.flush()
                webhook_id = webhook.id
            await ping(hooks, webhook_id)
            (request,) = await receiver.wait_for(1)
        assert request.legacy_signature_ok(legacy)
        # the same key in the form Standard Webhooks libraries take (API guide: older secrets)
        rest = legacy.removeprefix("whsec_")
        standard = "whsec_" + rest.replace("-", "+").replace("_", "/") + "="
        Verifier(standard).verify(request.body, request.headers)
        assert request.signature_ok(standard)
        read = (await hooks.client.get(f"/webhooks/{webhook_id}/")).json()
        assert read["legacy_signature"] is True


async def test_migration_0010_marks_the_existing_webhooks(database_url: str) -> None:
    admin = _plain_dsn(database_url)
    name = f"dis_test_mig_{uuid.uuid4().hex[:8]}"
    await _create_database(admin, name)
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0009"))
            account = (
                await conn.execute(text("INSERT INTO accounts (name) VALUES ('A') RETURNING id"))
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO webhooks (account_id, url, events, secret) "
                    "VALUES (:a, 'https://hooks.example.com/', ARRAY['ping'], 'whsec_x')"
                ),
                {"a": account},
            )
            await conn.commit()
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
            await conn.execute(
                text(
                    "INSERT INTO webhooks (account_id, url, events, secret) "
                    "VALUES (:a, 'https://hooks.example.com/new', ARRAY['ping'], 'whsec_y')"
                ),
                {"a": account},
            )
            rows = (
                await conn.execute(
                    text("SELECT secret, legacy_signature FROM webhooks ORDER BY id")
                )
            ).all()
            assert [tuple(r) for r in rows] == [("whsec_x", True), ("whsec_y", False)]
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0009"))
            await conn.commit()
    finally:
        await engine.dispose()
        await _drop_database(admin, name)


# --- secrets at rest ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def replica(database_url: str, hook_app: FastAPI, key: str | None) -> AsyncIterator[FastAPI]:
    """A replica with WEBHOOK_SECRET_KEY=`key` that delivers alone (the test app's dispatcher
    is paused meanwhile)."""
    settings = make_settings(**HOOK_SETTINGS, webhook_secret_key=key)
    application = create_app(settings, database_url=database_url)
    async with hook_app.state.webhooks.paused(), application.router.lifespan_context(application):
        yield application


async def stored_secret(application: FastAPI, webhook_id: int) -> str:
    async with application.state.sessionmaker() as session:
        value = await session.scalar(
            text("SELECT secret FROM webhooks WHERE id = :id"), {"id": webhook_id}
        )
    assert isinstance(value, str)
    return value


def fernet_plain(key: str, stored: str) -> str:
    assert stored.startswith("fernet:"), stored
    return Fernet(key).decrypt(stored.removeprefix("fernet:").encode()).decode()


@pytest_asyncio.fixture
async def plain_again(hook_app: FastAPI) -> AsyncIterator[None]:
    """Whatever a test encrypted (start-ups encrypt every webhook of the database) is stored
    plain again afterwards, so that other tests' keyless apps can sign."""
    yield
    box = SecretBox([Fernet(KEY_A), Fernet(KEY_B)])
    await decrypt_stored(hook_app.state.engine, box)


@pytest.mark.usefixtures("plain_again")
class TestSecretsAtRest:
    async def test_new_secrets_are_stored_encrypted_and_deliveries_verify(
        self, database_url: str, hook_app: FastAPI, hooks: Caller
    ) -> None:
        async with replica(database_url, hook_app, KEY_A) as keyed:
            async for caller in caller_on(keyed, "Encrypted"):
                async with receiving() as receiver:
                    hook = await subscribe(caller, receiver.url, "import.failed")
                    stored = await stored_secret(keyed, hook["id"])
                    assert hook["secret"] not in stored
                    assert fernet_plain(KEY_A, stored) == hook["secret"]
                    await ping(caller, hook["id"])
                    (request,) = await receiver.wait_for(1)
                Verifier(hook["secret"]).verify(request.body, request.headers)

    async def test_start_up_encrypts_plain_secrets(
        self, database_url: str, hook_app: FastAPI, hooks: Caller
    ) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "import.failed")  # no key: plain
            assert await stored_secret(hook_app, hook["id"]) == hook["secret"]
            async with replica(database_url, hook_app, KEY_A):
                stored = await stored_secret(hook_app, hook["id"])
                assert fernet_plain(KEY_A, stored) == hook["secret"]
                await ping(hooks, hook["id"])
                (request,) = await receiver.wait_for(1)
        Verifier(hook["secret"]).verify(request.body, request.headers)

    async def test_without_the_key_deliveries_fail_with_a_logged_error_and_the_service_runs(
        self,
        database_url: str,
        hook_app: FastAPI,
        hooks: Caller,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "import.failed")
            async with replica(database_url, hook_app, KEY_A):
                pass  # its start-up encrypted the secret
            assert (await stored_secret(hook_app, hook["id"])).startswith("fernet:")
            with caplog.at_level(logging.ERROR, logger="app.webhooks"):
                await ping(hooks, hook["id"])  # the keyless test app delivers
                [record] = await settled(hooks, hook["id"])
            assert receiver.requests == []
        assert record["status"] == "failed" and record["response_code"] is None
        assert record["attempts"] == HOOK_SETTINGS["webhook_max_attempts"]  # retried as usual
        assert "WEBHOOK_SECRET_KEY is not set" in record["error"], record["error"]
        assert all("WEBHOOK_SECRET_KEY is not set" in a["error"] for a in record["history"])
        assert any(
            f"delivery {record['id']}" in m and "WEBHOOK_SECRET_KEY is not set" in m
            for m in caplog.messages
        ), caplog.messages
        listed = await hooks.client.get("/webhooks/")
        assert listed.status_code == 200 and listed.json()["webhooks"]

    async def test_a_wrong_key_starts_logs_and_fails_deliveries_with_a_clear_error(
        self,
        database_url: str,
        hook_app: FastAPI,
        hooks: Caller,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "import.failed")
            async with replica(database_url, hook_app, KEY_A):
                pass
            with caplog.at_level(logging.ERROR, logger="app.webhooks"):
                async with replica(database_url, hook_app, KEY_B) as wrong:
                    assert any(
                        "cannot be decrypted with WEBHOOK_SECRET_KEY" in m for m in caplog.messages
                    ), caplog.messages
                    async with wrong.state.sessionmaker() as session:
                        assert await session.scalar(text("SELECT 1")) == 1  # it runs
                    await ping(hooks, hook["id"])
                    [record] = await settled(hooks, hook["id"])
            assert receiver.requests == []
        assert record["status"] == "failed"
        assert "cannot be decrypted with WEBHOOK_SECRET_KEY" in record["error"], record["error"]
        # the secret was left as it was: the right key still reads it
        assert fernet_plain(KEY_A, await stored_secret(hook_app, hook["id"])) == hook["secret"]

    async def test_rotation_new_key_first_then_alone(
        self, database_url: str, hook_app: FastAPI, hooks: Caller
    ) -> None:
        async with receiving() as receiver:
            hook = await subscribe(hooks, receiver.url, "import.failed")
            async with replica(database_url, hook_app, KEY_A):
                pass
            async with replica(database_url, hook_app, f"{KEY_B},{KEY_A}"):
                # re-encrypted with the new key at start-up
                assert (
                    fernet_plain(KEY_B, await stored_secret(hook_app, hook["id"]))
                    == (hook["secret"])
                )
                await ping(hooks, hook["id"])
                await receiver.wait_for(1)
            async with replica(database_url, hook_app, KEY_B):  # the old key dropped
                await ping(hooks, hook["id"])
                received = await receiver.wait_for(2)
        for request in received:
            Verifier(hook["secret"]).verify(request.body, request.headers)

    async def test_the_cli_encrypts_and_decrypts_the_stored_secrets(
        self, database_url: str, hook_app: FastAPI, hooks: Caller
    ) -> None:
        hook = await subscribe(hooks, "http://127.0.0.1:9/hook", "import.failed")

        def cli(key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
            env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
            env.pop("WEBHOOK_SECRET_KEY", None)
            if key is not None:
                env["WEBHOOK_SECRET_KEY"] = key
            return subprocess.run(
                [sys.executable, "-m", "app", "webhooks", *args],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip

        done = await asyncio.to_thread(cli, KEY_A, "encrypt-secrets", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["encrypted"] >= 1 and report["unreadable"] == 0, report
        assert fernet_plain(KEY_A, await stored_secret(hook_app, hook["id"])) == hook["secret"]

        nokey = await asyncio.to_thread(cli, None, "encrypt-secrets")
        assert nokey.returncode == 1 and "WEBHOOK_SECRET_KEY is not set" in nokey.stderr

        wrong = await asyncio.to_thread(cli, KEY_B, "decrypt-secrets", "--json")
        assert wrong.returncode == 1 and json.loads(wrong.stdout)["unreadable"] >= 1
        assert "cannot be decrypted" in wrong.stderr

        plain = await asyncio.to_thread(cli, KEY_A, "decrypt-secrets")
        assert plain.returncode == 0, plain.stderr
        assert "decrypted" in plain.stdout
        assert await stored_secret(hook_app, hook["id"]) == hook["secret"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-a-key", "key 1 of 1 is not a Fernet key"),
        (f"{KEY_A},{KEY_B[:-2]}", "key 2 of 2 is not a Fernet key"),
    ],
    ids=["garbage", "second-truncated"],
)
async def test_a_malformed_key_is_refused_with_its_name(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET_KEY") as failure:
        make_settings(webhook_secret_key=value)
    assert message in str(failure.value)


async def test_an_empty_key_means_unset() -> None:
    assert make_settings(webhook_secret_key="").webhook_secret_key is None
    assert make_settings(webhook_secret_key=f" {KEY_A} ").webhook_secret_key is not None
