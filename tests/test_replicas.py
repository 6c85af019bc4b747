"""Two service processes on one database, requests alternating between them: nothing may live in
one process's memory (row refs, statistics, search indexes, files, widgets)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from decimal import Decimal
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.service import Service, postgres_pids_for
from tests.ingestion import files

pytestmark = pytest.mark.slow


class Alternating(httpx.BaseTransport):
    """Sends each request to the next replica in turn."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = cycle(ports)
        self.lock = threading.Lock()
        self.inner = httpx.HTTPTransport()
        self.seen: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            port = next(self.ports)
            self.seen.append(port)
        request.url = request.url.copy_with(port=port)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def replicas() -> Iterator[tuple[Service, Service]]:
    base = Path(tempfile.mkdtemp(prefix="dis-replicas-", dir="/tmp"))
    base.chmod(0o755)
    first = Service(base / "data")
    second = Service(base / "data")  # same DATA_DIR: both use the one embedded server
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        for service in (first, second):
            if service.proc is not None and service.proc.poll() is None:
                service.stop()
        for pid in postgres_pids_for(base):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
    assert postgres_pids_for(base) == []


def exact(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return json.loads(response.content, parse_float=Decimal)


def test_api_across_two_replicas(replicas: tuple[Service, Service]) -> None:
    first, second = replicas
    headers = first.new_key("Replicas")
    transport = Alternating([first.port, second.port])
    with httpx.Client(transport=transport, base_url=first.api, headers=headers, timeout=60) as c:
        item = exact(c.post("/data-items/", json={"data_name": "Shared"}))
        base = f"/data-items/{item['id']}"
        region = exact(c.post(f"{base}/fields/", json={"field_label": "Region"}))["id"]
        revenue = exact(
            c.post(f"{base}/fields/", json={"field_label": "Revenue", "field_type": "decimal"})
        )["id"]
        r, v = str(region), str(revenue)

        # row refs are allocated in the database: concurrent writers on both replicas never collide
        def writer(tag: str) -> None:
            with httpx.Client(transport=Alternating([first.port, second.port]), base_url=first.api,
                              headers=headers, timeout=60) as w:  # fmt: skip
                for _ in range(5):
                    rows = [{r: tag, v: "0.1"} for _ in range(40)]
                    assert w.post(f"{base}/rows/bulk/", json={"rows": rows}).status_code == 201

        threads = [threading.Thread(target=writer, args=(t,)) for t in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        page = exact(c.get(f"{base}/rows/", params={"limit": 500}))
        assert page["total"] == 400
        assert [int(x["_row_ref"]) for x in page["rows"]] == list(range(400))

        # statistics written by one replica, read (and recomputed) by the other
        summary = exact(c.get(f"{base}/summary/"))
        stats = {s["field_label"]: s for s in summary["field_summaries"]}
        assert stats["Revenue"]["sum"] == Decimal("40") and stats["Region"]["unique_count"] == 2
        exact(c.patch(f"{base}/rows/0/", json={"values": {r: "C", v: 10}}))
        stats = {s["field_label"]: s for s in exact(c.get(f"{base}/summary/"))["field_summaries"]}
        assert stats["Revenue"]["sum"] == Decimal("49.9") and stats["Region"]["unique_count"] == 3

        # a file uploaded through one replica is downloaded through the other
        data = files.sales_csv()
        up = exact(
            c.post(
                "/data-items/create-from-file/",
                data={"data_name": "f"},
                files={"data_file": ("s.csv", data)},
            )
        )
        ref = up["reference_file"]["id"]
        assert c.get(f"/data-items/{up['id']}/reference-files/{ref}/").content == data
        more = exact(
            c.post(
                f"/data-items/{up['id']}/append-from-file/", files={"data_file": ("m.csv", data)}
            )
        )
        assert more["rows_appended"] == 4
        assert exact(c.get(f"/data-items/{up['id']}/"))["row_count"] == 8

        # widgets, search, type changes, deletes: all state is in the database
        widget = exact(c.post(f"{base}/widgets/", json={
            "title": "By region", "label_field": region, "series": [{"value_field": revenue, "aggregation": "sum"}],
        }))  # fmt: skip
        drawn = exact(c.get(f"{base}/widgets/{widget['id']}/data/"))
        by_label = dict(zip(drawn["labels"], drawn["datasets"][0]["data"], strict=True))
        assert by_label["C"] == Decimal("10") and by_label["A"] + by_label["B"] == Decimal("39.9")
        assert sum(drawn["datasets"][0]["data"]) == Decimal("49.9")
        assert exact(c.get(f"{base}/rows/", params={"search": "c"}))["total"] == 1
        exact(c.patch(f"{base}/fields/{revenue}/", json={"field_type": "char"}))
        assert exact(c.get(f"{base}/fields/"))["fields"][1]["field_type"] == "char"
        exact(c.delete(f"{base}/"))
        assert c.get(f"{base}/").status_code == 404
        assert c.get(f"{base}/rows/").status_code == 404
    assert set(transport.seen) == {first.port, second.port}
