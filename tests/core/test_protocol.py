"""Protocol abuse over real sockets (uvicorn + the app): bodies longer than their Content-Length,
chunked bodies past the limit, clients that vanish or stall mid-body, and JSON bodies built to
exhaust memory or the stack. Each gets a JSON 4xx (or, when the client is gone, nothing), nothing
is written, spooled files are removed, and the service keeps answering."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.routing import MAX_JSON_DEPTH, MAX_JSON_ITEMS
from tests.conftest import Caller
from tests.fixtures.live import LiveServer, live_server
from tests.helpers import assert_error

UPLOAD_LIMIT = 200_000
JSON_LIMIT = 50_000
READ_TIMEOUT = 0.5
CREATE = "/api/v1/data-items/create-from-file/"


@dataclass
class Live:
    server: LiveServer
    key: str
    spool: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url + "/api/v1", headers={"X-Api-Key": self.key}, timeout=10
        )

    def items(self) -> list[str]:
        with self.client() as c:
            return [i["data_name"] for i in c.get("/data-items/").json()["data_items"]]

    def spooled(self) -> list[Path]:
        return list(self.spool.glob("*")) if self.spool.exists() else []


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    spool = tmp_path_factory.mktemp("spool")
    with live_server(
        database_url,
        max_upload_bytes=UPLOAD_LIMIT,
        max_json_bytes=JSON_LIMIT,
        body_read_timeout=READ_TIMEOUT,
        upload_dir=spool,
    ) as server:
        _, _, key = server.new_account("Protocol")
        yield Live(server, key, spool)


@pytest.fixture
def fresh(live: Live) -> Live:
    """The module's server with a new account (each test sees only its own items)."""
    _, _, key = live.server.new_account("Protocol")
    return Live(live.server, key, live.spool)


# ------------------------------------------------------------------------------ raw HTTP


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    rest: bytes  # whatever followed the first response (a second one), until the server closed
    closed: bool

    def json(self) -> Any:
        return json.loads(self.body)


def connect(live: Live) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.server.port), timeout=10)


def head(method: str, path: str, key: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", f"X-Api-Key: {key}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket, wait: float = 10) -> Answer:
    """The first response, and everything after it until the server closes (or `wait` ends)."""
    sock.settimeout(wait)
    data = b""
    closed = False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
        if b"\r\n\r\n" in data:
            top, _, after = data.partition(b"\r\n\r\n")
            length = next(
                (int(h.split(b":")[1]) for h in top.split(b"\r\n") if h.lower().startswith(b"content-length:")),
                None,
            )  # fmt: skip
            if length is not None and len(after) >= length:
                sock.settimeout(0.5)  # the rest: a second response, or the close
                deadline = min(deadline, time.monotonic() + 2)
    top, _, after = data.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    length = int(headers.get("content-length", len(after)))
    return Answer(int(status_line.split()[1]), headers, after[:length], after[length:], closed)


def multipart(data_name: str, filename: str, content: bytes, boundary: str = "xyzzy") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data_name"\r\n\r\n{data_name}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="data_file"; '
            f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


def csv_rows(n: int) -> bytes:
    return b"id,name\r\n" + b"".join(b"%d,name %d\r\n" % (i, i) for i in range(n))


def wait_until(condition: Any, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


# ------------------------------------------------------------------------------ lengths


def test_bytes_past_content_length_are_not_part_of_the_body(fresh: Live) -> None:
    """A body longer than its Content-Length: the declared bytes are the request; the rest is
    read as a next request, refused as such (uvicorn's 400), and the connection closed. The
    trailing JSON is never run: no request smuggling."""
    first = b'{"data_name": "declared"}'
    smuggled = b'{"data_name": "smuggled"}'
    with connect(fresh) as sock:
        sock.sendall(
            head("POST", "/api/v1/data-items/", fresh.key, Content_Type="application/json",
                 Content_Length=str(len(first)))
            + first + b"\r\n" + smuggled
        )  # fmt: skip
        answer = read_answer(sock)
    assert answer.status == 201, answer
    assert answer.rest.startswith(b"HTTP/1.1 400"), answer.rest
    assert answer.closed
    assert fresh.items() == ["declared"]


def test_content_length_over_the_limit_is_refused_before_the_body(fresh: Live) -> None:
    with connect(fresh) as sock:
        sock.sendall(
            head("POST", "/api/v1/data-items/", fresh.key, Content_Type="application/json",
                 Content_Length=str(10 * JSON_LIMIT))
        )  # fmt: skip
        started = time.perf_counter()
        answer = read_answer(sock)  # sent without the body being read at all
    assert time.perf_counter() - started < 2
    assert answer.status == 413 and answer.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert answer.headers["connection"] == "close" and answer.closed


@pytest.mark.parametrize("kind", ["json", "upload"])
def test_chunked_body_past_the_limit_is_413(fresh: Live, kind: str) -> None:
    if kind == "json":
        path, ctype, limit = "/api/v1/data-items/", "application/json", JSON_LIMIT
        body = b'{"data_name": "' + b"x" * (2 * limit) + b'"}'
    else:
        path, ctype, limit = CREATE, "multipart/form-data; boundary=xyzzy", UPLOAD_LIMIT
        body = multipart("chunked", "big.csv", csv_rows(20_000))
    assert len(body) > limit
    with connect(fresh) as sock:
        sock.sendall(head("POST", path, fresh.key, Content_Type=ctype, Transfer_Encoding="chunked"))
        try:
            for i in range(0, len(body), 8192):
                piece = body[i : i + 8192]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the end: fine
        answer = read_answer(sock)
    assert answer.status == 413, answer
    assert f"{limit:,} bytes" in answer.json()["error"]
    assert answer.headers["connection"] == "close"
    assert fresh.items() == []
    assert wait_until(lambda: fresh.spooled() == [])


# ------------------------------------------------------------------------------ clients


def test_client_that_disconnects_mid_upload_leaves_nothing(fresh: Live) -> None:
    content = csv_rows(8_000)  # ~110 kB, under the limit
    body = multipart("vanished", "v.csv", content)
    with connect(fresh) as sock:
        sock.sendall(
            head("POST", CREATE, fresh.key, Content_Type="multipart/form-data; boundary=xyzzy",
                 Content_Length=str(len(body)))
        )  # fmt: skip
        sock.sendall(body[: len(body) // 2])
        assert wait_until(lambda: len(fresh.spooled()) == 1), "the upload was not being spooled"
    # closed mid-body: the spooled half is removed, nothing is created
    assert wait_until(lambda: fresh.spooled() == [])
    assert fresh.items() == []
    with fresh.client() as c:
        assert c.get("/status/").status_code == 200


@pytest.mark.parametrize("kind", ["json", "upload"])
def test_stalled_client_gets_408_and_the_connection_closed(fresh: Live, kind: str) -> None:
    if kind == "json":
        path, ctype = "/api/v1/data-items/", "application/json"
        body = b'{"data_name": "slow"}'
    else:
        path, ctype = CREATE, "multipart/form-data; boundary=xyzzy"
        body = multipart("slow", "s.csv", csv_rows(100))
    with connect(fresh) as sock:
        sock.sendall(
            head("POST", path, fresh.key, Content_Type=ctype, Content_Length=str(len(body)))
        )
        sock.sendall(body[:10])
        started = time.perf_counter()
        answer = read_answer(sock)
    waited = time.perf_counter() - started
    assert answer.status == 408, answer
    assert answer.json()["code"] == "REQUEST_TIMEOUT"
    assert f"{READ_TIMEOUT:g} s" in answer.json()["error"]
    assert READ_TIMEOUT <= waited < READ_TIMEOUT + 1.5
    assert answer.headers["connection"] == "close" and answer.closed
    assert fresh.items() == []
    assert wait_until(lambda: fresh.spooled() == [])


def test_a_slow_but_steady_client_is_fine(fresh: Live) -> None:
    """The timeout is per read, not for the whole body."""
    body = b'{"data_name": "steady"}'
    with connect(fresh) as sock:
        sock.sendall(
            head("POST", "/api/v1/data-items/", fresh.key, Content_Type="application/json",
                 Content_Length=str(len(body)))
        )  # fmt: skip
        for i in range(0, len(body), 6):
            sock.sendall(body[i : i + 6])
            time.sleep(READ_TIMEOUT * 0.6)
        answer = read_answer(sock)
    assert answer.status == 201, answer
    assert fresh.items() == ["steady"]


def test_a_stalled_client_does_not_hold_up_others(fresh: Live) -> None:
    stalled = [connect(fresh) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(
                head("POST", "/api/v1/data-items/", fresh.key, Content_Type="application/json",
                     Content_Length="1000") + b"{"
            )  # fmt: skip
        with fresh.client() as c:
            started = time.perf_counter()
            assert c.get("/data-items/").status_code == 200
            assert time.perf_counter() - started < 0.5
    finally:
        for sock in stalled:
            sock.close()


def test_half_sent_headers_hold_only_their_own_connections(fresh: Live) -> None:
    """uvicorn has no timeout for a request's headers (nor for a connection that sends nothing):
    such connections stay open until the client goes (docs/operations.md: the gateway in
    front bounds header time). They cost a socket each and do not slow anyone else down."""
    lingering = [connect(fresh) for _ in range(50)]
    try:
        for sock in lingering:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # never finished
        time.sleep(READ_TIMEOUT * 2)  # BODY_READ_TIMEOUT does not apply: no request yet
        for sock in lingering[:5]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)  # nothing was answered, and the connection is still open
        with fresh.client() as c:
            started = time.perf_counter()
            assert c.get("/data-items/").status_code == 200
            assert time.perf_counter() - started < 0.5
    finally:
        for sock in lingering:
            sock.close()


# ------------------------------------------------------------------------------ JSON bombs


@pytest.mark.asyncio
class TestJsonBodies:
    async def test_too_many_values_is_413_before_parsing(self, api: Caller) -> None:
        """`[{},{},…]` of 32 MiB would be ~1 GB of Python objects: counted, then refused."""
        body = b'{"rows": [' + b"{}," * MAX_JSON_ITEMS + b"{}]}"
        started = time.perf_counter()
        r = await api.client.post(
            "/data-items/1/rows/bulk/", content=body, headers={"content-type": "application/json"}
        )
        assert time.perf_counter() - started < 2
        error = assert_error(r, 413, "PAYLOAD_TOO_LARGE")["error"]
        assert f"more than {MAX_JSON_ITEMS:,} values" in error

    @pytest.mark.parametrize("body", [b"1.5", b"-4.5e16", b"1", b"null", b"[]", b'"x"'])
    async def test_a_body_that_is_not_an_object_is_400(self, api: Caller, body: bytes) -> None:
        """A number with a fraction parses as a Decimal, which pydantic (with the attribute
        lookup FastAPI allows) took for an empty object: the PATCH answered 200 (found by
        the fuzzer)."""
        item = (await api.client.post("/data-items/", json={"data_name": "kept"})).json()
        r = await api.client.patch(
            f"/data-items/{item['id']}/", content=body, headers={"content-type": "application/json"}
        )
        assert assert_error(r, 400, "VALIDATION_ERROR")["details"][0]["field"] == "body"

    async def test_commas_inside_strings_do_not_count(self, api: Caller) -> None:
        item = (
            await api.client.post(
                "/data-items/",
                json={"data_name": "c", "fields": [{"field_label": "t", "field_type": "text"}]},
            )
        ).json()
        key = str(item["fields"][0]["id"])
        text = "," * 99_999  # cells hold at most 100,000 characters
        rows = [{key: text}] * (MAX_JSON_ITEMS // len(text) + 1)
        r = await api.client.post(f"/data-items/{item['id']}/rows/bulk/", json={"rows": rows})
        assert r.status_code == 201, r.text
        row = await api.client.get(f"/data-items/{item['id']}/rows/0/")
        assert row.json()["row"][key] == text

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 950, 100_000])
    async def test_deep_nesting_is_400(self, api: Caller, depth: int) -> None:
        item = (await api.client.post("/data-items/", json={"data_name": "d"})).json()
        nested = "[" * depth + "]" * depth
        body = '{"title": "t", "chart_options": {"x": ' + nested + "}}"
        r = await api.client.post(
            f"/data-items/{item['id']}/widgets/",
            content=body,
            headers={"content-type": "application/json"},
        )
        error = assert_error(r, 400, "MALFORMED_JSON")["error"]
        assert f"more than {MAX_JSON_DEPTH} levels" in error

    async def test_nesting_within_the_limit_round_trips(self, api: Caller) -> None:
        """Stored and rendered again (lists, one widget, the bundle) without recursion trouble."""
        item = (await api.client.post("/data-items/", json={"data_name": "d"})).json()
        depth = MAX_JSON_DEPTH - 3  # body, chart_options and "x" are levels too
        options: Any = {"x": json.loads("[" * depth + "]" * depth)}
        r = await api.client.post(
            f"/data-items/{item['id']}/widgets/", json={"chart_options": options}
        )
        assert r.status_code == 201, r.text
        listed = await api.client.get(f"/data-items/{item['id']}/widgets/")
        assert listed.status_code == 200
        assert listed.json()["widgets"][0]["chart_options"] == options
