"""The admin command line against the test database: accounts and keys, as an operator uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def cli_json(database_url: str, *args: str) -> dict[str, object]:
    result = run_cli(database_url, *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.mark.asyncio
async def test_account_and_key_lifecycle(database_url: str, client: httpx.AsyncClient) -> None:
    created = cli_json(database_url, "accounts", "create", "Acme Ltd")
    assert set(created) == {"account_id", "api_key", "key_id"}
    key = str(created["api_key"])
    assert key.startswith("dik_") and len(key) >= 4 + 43  # 32 random bytes, URL-safe
    assert (await client.get("/api/v1/status/", headers={"X-Api-Key": key})).json()["account"] == {
        "id": created["account_id"],
        "name": "Acme Ltd",
    }

    second = cli_json(database_url, "keys", "create", str(created["account_id"]))
    assert second["account_id"] == created["account_id"] and second["api_key"] != key

    listed = cli_json(database_url, "keys", "list", str(created["account_id"]))
    keys = listed["keys"]
    assert isinstance(keys, list) and [k["key_id"] for k in keys] == [
        created["key_id"],
        second["key_id"],
    ]
    assert all(k["revoked_at"] is None and key not in json.dumps(k) for k in keys)

    revoked = cli_json(database_url, "keys", "revoke", str(created["key_id"]))
    assert revoked == {"key_id": created["key_id"], "revoked": True}
    assert_error(await client.get("/api/v1/status/", headers={"X-Api-Key": key}), 401)
    ok = await client.get("/api/v1/status/", headers={"X-Api-Key": str(second["api_key"])})
    assert ok.status_code == 200


def test_plain_output_shows_the_key_once(database_url: str) -> None:
    result = run_cli(database_url, "accounts", "create", "Plain")
    assert result.returncode == 0, result.stderr
    assert "dik_" in result.stdout and "not shown again" in result.stdout


def test_errors_are_clear_and_exit_nonzero(database_url: str) -> None:
    missing = run_cli(database_url, "keys", "create", "987654321")
    assert missing.returncode == 1 and "Account 987654321 does not exist" in missing.stderr
    gone = run_cli(database_url, "keys", "revoke", "987654321")
    assert gone.returncode == 1 and "does not exist" in gone.stderr
    empty = run_cli(database_url, "accounts", "create", "  ")
    assert empty.returncode == 1 and "must not be empty" in empty.stderr
    usage = run_cli(database_url, "keys")
    assert usage.returncode == 2 and "usage" in usage.stderr
