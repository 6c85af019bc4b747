"""HEAD is GET without the body, on every GET route: the same status, headers and checks (key,
tenancy), no body. A HEAD on a path without GET is a 405 whose Allow names its methods, and
every 405 beside a GET route lists HEAD in Allow. Checked over ASGI and over a real socket
(uvicorn must not wait for a body that never comes)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Caller
from tests.fixtures.live import LiveServer, live_server
from tests.helpers import create_item

CSV = b"Region,Revenue\nNorth,10.50\nSouth,7\n"


async def _item(api: Caller) -> int:
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "Head"},
        files={"data_file": ("head.csv", CSV)},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    ["/data-items/{id}/", "/data-items/{id}/rows/", "/data-items/{id}/summary/",
     "/data-items/{id}/export/", "/data-items/", "/usage/"],
)  # fmt: skip
async def test_head_answers_as_get_without_the_body(api: Caller, path: str) -> None:
    path = path.replace("{id}", str(await _item(api)))
    get = await api.client.get(path)
    head = await api.client.head(path)
    assert get.status_code == head.status_code == 200, (get.text, head.text)
    assert head.content == b""
    assert get.content
    for name in ("content-type", "content-disposition"):
        assert head.headers.get(name) == get.headers.get(name), name
    if "content-length" in head.headers:
        assert int(head.headers["content-length"]) == len(get.content)


@pytest.mark.asyncio
async def test_head_keeps_every_check(api: Caller, intruder: Caller) -> None:
    item = await _item(api)
    assert (await intruder.client.head(f"/data-items/{item}/")).status_code == 404
    assert (await api.client.head("/data-items/999999999/")).status_code == 404
    unkeyed = await api.client.head(f"/data-items/{item}/", headers={"X-Api-Key": ""})
    assert unkeyed.status_code == 401 and unkeyed.content == b""


@pytest.mark.asyncio
async def test_head_on_a_path_without_get_is_405(api: Caller) -> None:
    created = await create_item(api.client, "Sales")
    r = await api.client.head("/data-items/create-from-file/")
    assert (r.status_code, r.headers["allow"], r.content) == (405, "POST", b"")
    r = await api.client.put(f"/data-items/{created['id']}/")
    assert r.headers["allow"] == "DELETE, GET, HEAD, PATCH"


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url) as server:
        yield server


def test_head_over_a_real_socket(live: LiveServer) -> None:
    _, _, key = live.new_account("Head")
    with httpx.Client(base_url=live.url + "/api/v1", headers={"X-Api-Key": key}) as client:
        created = client.post(
            "/data-items/create-from-file/",
            data={"data_name": "Live"},
            files={"data_file": ("head.csv", CSV)},
        )
        assert created.status_code == 201, created.text
        path = f"/data-items/{created.json()['id']}/export/"
        get = client.get(path)
        for _ in range(3):  # kept alive: each answer ends where it should
            head = client.head(path, timeout=5)
            assert (head.status_code, head.content) == (200, b"")
            assert head.headers["content-type"] == get.headers["content-type"]
        assert client.head("/data-items/create-from-file/", timeout=5).status_code == 405
        assert client.get(path).content == get.content
    assert httpx.head(live.url + "/healthz", timeout=5).status_code == 200
