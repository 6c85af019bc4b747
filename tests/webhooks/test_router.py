"""Webhook endpoints: the secret shown once, validation (400, never 422), the address policy,
deletes, and tenancy (another account's webhook is a 404 and stays untouched)."""

from __future__ import annotations

import pytest

from app.webhooks.service import MAX_WEBHOOKS_PER_ACCOUNT
from tests.conftest import Caller
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

PUBLIC_URL = "https://hooks.example.com/data-items"


async def create(api: Caller, **body: object) -> dict[str, object]:
    payload = {"url": PUBLIC_URL, "events": ["import.succeeded"], **body}
    r = await api.client.post("/webhooks/", json=payload)
    assert r.status_code == 201, r.text
    created: dict[str, object] = r.json()
    return created


class TestCreate:
    async def test_the_secret_is_shown_once(self, api: Caller) -> None:
        created = await create(
            api,
            events=["import.failed", "data_item.deleted", "import.failed"],
            description="ops",
        )
        assert set(created) == {
            "id", "url", "events", "description", "created_at", "legacy_signature", "secret",
        }  # fmt: skip
        secret = str(created["secret"])
        assert secret.startswith("whsec_") and len(secret) > 40
        assert created["legacy_signature"] is False
        assert created["events"] == ["import.failed", "data_item.deleted"]  # duplicates dropped
        assert created["url"] == PUBLIC_URL and created["description"] == "ops"

        read = (await api.client.get(f"/webhooks/{created['id']}/")).json()
        assert "secret" not in read and read["id"] == created["id"]
        listed = (await api.client.get("/webhooks")).json()["webhooks"]
        assert [w["id"] for w in listed] == [created["id"]]
        assert all("secret" not in w for w in listed)
        again = await create(api)
        assert again["secret"] != secret

    @pytest.mark.parametrize(
        "body",
        [
            {"events": []},
            {"events": ["import.started"]},
            {"events": "import.failed"},
            {"url": ""},
            {"url": "ftp://hooks.example.com/x"},
            {"url": "hooks.example.com/x"},
            {"url": "https://user:pw@hooks.example.com/x"},
            {"url": "https://hooks.example.com/x#frag"},
            {"url": "https://hooks.example.com/a b"},
            {"url": "https://hooks.example.com:99999/"},
            {"url": "https://" + "a" * 2050 + ".com/"},
            {"secret": "mine"},
            {"description": "x" * 1001},
        ],
    )
    async def test_bad_input_is_400(self, api: Caller, body: dict[str, object]) -> None:
        payload = {"url": PUBLIC_URL, "events": ["import.succeeded"], **body}
        r = await api.client.post("/webhooks/", json=payload)
        assert_error(r, 400, "VALIDATION_ERROR")
        assert (await api.client.get("/webhooks/")).json()["webhooks"] == []

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://app.localhost/hook",
            "http://printer.local/hook",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://intranet/hook",
            "http://10.1.2.3/hook",
            "http://172.16.0.1/hook",
            "http://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/hook",
            "http://0.0.0.0/hook",
            "http://[::1]/hook",
            "http://[fd00::1]/hook",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[64:ff9b::a00:1]/hook",
            "http://224.0.0.1/hook",
            "http://2130706433/hook",
            # IPv6 forms that carry, or stand for, an internal address
            "http://[::127.0.0.1]/hook",
            "http://[::ffff:0:7f00:1]/hook",
            "http://[64:ff9b:1::7f00:1]/hook",
            "http://[fec0::1]/hook",
            "http://[2002:a00:1::1]/hook",
            "http://[2001:0:a00:1::f7f7:f7f7]/hook",
            "http://[::]/hook",
            "http://[ff02::1]/hook",
            "http://[2001:db8::1]/hook",
            # IPv4 ranges that are not globally reachable
            "http://255.255.255.255/hook",
            "http://239.255.255.250/hook",
            "http://192.0.2.1/hook",
            "http://198.51.100.1/hook",
            "http://203.0.113.1/hook",
            "http://192.0.0.8/hook",
            "http://192.88.99.1/hook",
            "http://198.18.0.1/hook",
            "http://100.127.255.254/hook",
        ],
    )
    async def test_non_public_destinations_are_refused_by_default(
        self, api: Caller, url: str
    ) -> None:
        r = await api.client.post("/webhooks/", json={"url": url, "events": ["import.failed"]})
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert body["details"][0]["field"] == "url"

    async def test_public_addresses_and_ports_are_fine(self, api: Caller) -> None:
        for url in ("http://93.184.215.14:8080/x?y=1", "https://[2606:2800:21f:cb07::1]/h"):
            await create(api, url=url)

    async def test_at_most_a_limited_number_per_account(self, api: Caller) -> None:
        for _ in range(MAX_WEBHOOKS_PER_ACCOUNT):
            await create(api)
        r = await api.client.post(
            "/webhooks/", json={"url": PUBLIC_URL, "events": ["import.failed"]}
        )
        assert str(MAX_WEBHOOKS_PER_ACCOUNT) in assert_error(r, 400)["error"]


class TestDelete:
    async def test_deleted_then_gone(self, api: Caller) -> None:
        created = await create(api)
        r = await api.client.delete(f"/webhooks/{created['id']}")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        assert_error(await api.client.get(f"/webhooks/{created['id']}/"), 404)
        assert_error(await api.client.delete(f"/webhooks/{created['id']}/"), 404)
        assert_error(await api.client.get(f"/webhooks/{created['id']}/deliveries/"), 404)


class TestTenancy:
    async def test_another_accounts_webhook_is_404_and_untouched(
        self, api: Caller, intruder: Caller
    ) -> None:
        created = await create(api)
        path = f"/webhooks/{created['id']}/"
        missing = assert_error(await intruder.client.get("/webhooks/987654321/"), 404)
        for response in (
            await intruder.client.get(path),
            await intruder.client.delete(path),
            await intruder.client.get(path + "deliveries/"),
            await intruder.client.post(path + "ping/"),
        ):
            assert assert_error(response, 404)["code"] == missing["code"]
        assert (await intruder.client.get("/webhooks/")).json()["webhooks"] == []
        assert (await api.client.get(path)).status_code == 200
        deliveries = (await api.client.get(path + "deliveries/")).json()
        assert deliveries["total"] == 0  # the intruder's ping queued nothing

    async def test_bad_ids_and_paging_are_400(self, api: Caller) -> None:
        created = await create(api)
        assert_error(await api.client.get("/webhooks/0/"), 400)
        assert_error(await api.client.get("/webhooks/x/"), 400)
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
            r = await api.client.get(f"/webhooks/{created['id']}/deliveries/", params=params)
            assert_error(r, 400)

    async def test_without_a_key_is_401(self, api: Caller) -> None:
        r = await api.client.post(
            "/webhooks/", json={"url": PUBLIC_URL, "events": ["import.failed"]},
            headers={"X-Api-Key": ""},
        )  # fmt: skip
        assert_error(r, 401)
