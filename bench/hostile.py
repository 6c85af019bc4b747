"""Hostile inputs against a running service: what each gets, how long it takes, how much memory
the service process needs for it, and how fast /healthz answers meanwhile.

Usage:  make hostile      (or: .venv/bin/python bench/hostile.py)
It starts its own embedded PostgreSQL and the service (`python -m app serve`, one process), then
sends each input in turn. Peak memory is the service process's peak RSS (VmHWM, reset before
each input through /proc/<pid>/clear_refs) minus its RSS just before; a workbook is read in a
process of its own (forked from the service's fork server), whose peak RSS is the next column
(sampled every 5 ms: "-" when no reader ran, or it ended before it was seen). Prints a Markdown
table.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import Service  # noqa: E402

from app.core.database import embedded_server_settings  # noqa: E402
from app.core.embedded import EmbeddedPostgres  # noqa: E402
from app.core.routing import MAX_JSON_ITEMS  # noqa: E402
from tests.ingestion import files, hostile_files  # noqa: E402

GiB = 1 << 30
Body = Callable[[], Iterable[bytes] | bytes]


@dataclass
class Case:
    what: str
    path: str
    body: Body
    content_type: str
    size: int = 0


def _kib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB" if n >= 1 << 20 else f"{n / 1024:,.0f} KiB"


def upload(what: str, name: str, make: Callable[[], bytes | Iterator[bytes]]) -> Case:
    boundary = "hostilebench"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data_name"\r\n\r\nx\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="data_file"; '
            f'filename="{name}"\r\n\r\n'
        ).encode()
        data = make()
        if isinstance(data, bytes):
            yield data
        else:
            yield from data
        yield f"\r\n--{boundary}--\r\n".encode()

    return Case(
        what, "/data-items/create-from-file/", body, f"multipart/form-data; boundary={boundary}"
    )


def json_case(what: str, path: str, make: Callable[[], bytes]) -> Case:
    return Case(what, path, make, "application/json")


IMPORT_BUNDLE = "/data-items/import-bundle/"


def bundle_with_options(options: bytes) -> bytes:
    """A bundle (one field, one row) whose one widget has these chart_options (raw JSON)."""
    return (
        b'{"format": "data-items-bundle", "version": 1, "item": {"data_name": "hostile"}, '
        b'"fields": [{"id": 1, "field_label": "a"}], '
        b'"widgets": [{"title": "w", "chart_options": ' + options + b'}], "rows": [{"1": "x"}]}'
    )


def deep_bundle() -> bytes:
    """chart_options nested 5,000 levels: {"a": {"a": … 1 …}}."""
    return bundle_with_options(b'{"a":' * 4_999 + b'{"a":1' + b"}" * 5_000)


def wide_bundle() -> bytes:
    """~10 MB: chart_options holding 3.3 million empty arrays."""
    return bundle_with_options(b'{"a": [' + b"[]," * 3_299_999 + b"[]]}")


def bundle_upload(what: str, make: Callable[[], bytes]) -> Case:
    boundary = "hostilebench"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="bundle_file"; '
            'filename="hostile.bundle.json"\r\nContent-Type: application/json\r\n\r\n'
        ).encode()
        yield make()
        yield f"\r\n--{boundary}--\r\n".encode()

    return Case(what, IMPORT_BUNDLE, body, f"multipart/form-data; boundary={boundary}")


CASES = [
    upload(
        "xlsx bomb: 3 MB that inflates to 3 GiB",
        "bomb.xlsx",
        lambda: hostile_files.deflate_bomb_xlsx(3 * GiB),
    ),
    upload(
        "xlsx bomb lying about its size (claims 100 kB)",
        "lying.xlsx",
        lambda: hostile_files.deflate_bomb_xlsx(3 * GiB, claim=100_000),
    ),
    upload("xlsx with billion-laughs entities", "laughs.xlsx", hostile_files.billion_laughs_xlsx),
    upload("xlsx with an external entity (XXE)", "xxe.xlsx", hostile_files.external_entity_xlsx),
    upload("xlsx with 500,000 nested elements", "deep.xlsx", hostile_files.deep_xml_xlsx),
    upload("CSV header of 100,000 columns", "wide.csv", lambda: files.wide_header_csv(100_000)),
    upload(
        "CSV with one 200 MB line",
        "line.csv",
        lambda: hostile_files.long_line_csv(200_000_000),
    ),
    upload(
        "CSV, 1M lines of UTF-8, one bad byte at the end",
        "bad.csv",
        lambda: b"id,city\r\n" + "1,Köln\r\n".encode() * 1_000_000 + b"2,Z\xfcrich\r\n",
    ),
    upload(
        "CSV, 1M lines, a NUL byte at the end",
        "nul.csv",
        lambda: b"id,city\r\n" + b"1,Paris\r\n" * 1_000_000 + b"2,Ber\x00lin\r\n",
    ),
    upload(
        "sparse xlsx: cells at A1 and XFD1048576 (the whole grid)",
        "xfd.xlsx",
        lambda: hostile_files.sparse_xlsx("XFD1048576"),
    ),
    upload(
        "sparse xlsx: cells at A1 and ALL20000 (20M cells)",
        "all.xlsx",
        lambda: hostile_files.sparse_xlsx("ALL20000"),
    ),
    upload(
        "sparse xlsx: A1 and XFD1048576, <dimension> claiming A1:B2",
        "liar.xlsx",
        lambda: hostile_files.sparse_xlsx("XFD1048576", dimension="A1:B2"),
    ),
    upload(
        "sparse xls: cells at A1 and IV65536 (the whole .xls grid)",
        "iv.xls",
        hostile_files.sparse_xls,
    ),
    upload(
        "sparse xls: A1 and IV65536, DIMENSIONS claiming 2 cells",
        "liar.xls",
        lambda: hostile_files.sparse_xls(dimensions=(2, 1)),
    ),
    upload("an .xlsx named .csv", "sheet.csv", lambda: files.xlsx_bytes({"S": [["a"], [1]]})),
    upload("a PDF named .xls", "report.xls", files.pdf_bytes),
    json_case(
        f"JSON: {MAX_JSON_ITEMS + 1:,} empty objects (over the value cap)",
        "/data-items/1/rows/bulk/",
        lambda: b'{"rows": [' + b"{}," * MAX_JSON_ITEMS + b"{}]}",
    ),
    json_case(
        f"JSON: {MAX_JSON_ITEMS - 9:,} decimals (just under the value cap)",
        "/data-items/1/rows/bulk/",
        lambda: b'{"rows": [' + b"1.5," * (MAX_JSON_ITEMS - 10) + b"1.5]}",
    ),
    json_case(
        f"JSON: {MAX_JSON_ITEMS // 2 - 9:,} empty objects (just under the value cap)",
        "/data-items/1/rows/bulk/",
        lambda: b'{"rows": [' + b"{}," * (MAX_JSON_ITEMS // 2 - 10) + b"{}]}",
    ),
    json_case(
        "JSON nested 100,000 levels",
        "/data-items/",
        lambda: b"[" * 100_000 + b"]" * 100_000,
    ),
    json_case("bundle: chart_options nested 5,000 levels (JSON body)", IMPORT_BUNDLE, deep_bundle),
    bundle_upload("bundle: chart_options nested 5,000 levels (bundle_file)", deep_bundle),
    json_case("bundle: 3.3 million empty arrays (JSON body)", IMPORT_BUNDLE, wide_bundle),
    bundle_upload("bundle: 3.3 million empty arrays (bundle_file)", wide_bundle),
]


@dataclass
class Poller:
    url: str
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                c.get(self.url)
                self.latencies.append(time.perf_counter() - t0)
                time.sleep(0.02)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


@dataclass
class ReaderSampler:
    """The peak RSS (VmHWM) of the service's grandchildren while a case runs: the workbook
    readers, forked from the service's fork server (sampled every 5 ms)."""

    pid: int
    peak: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for child in _children(self.pid):
                for grandchild in _children(child):
                    with contextlib.suppress(OSError, KeyError):
                        self.peak = max(self.peak, rss(grandchild, "VmHWM"))
            time.sleep(0.005)


def rss(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field_name)


def measure(svc: Service, case: Case) -> str:
    data = case.body()
    size = len(data) if isinstance(data, bytes) else 0
    chunks: Iterable[bytes] = [data] if isinstance(data, bytes) else data

    def counted() -> Iterator[bytes]:
        nonlocal size
        for c in chunks:
            size += len(c) if not isinstance(data, bytes) else 0
            yield c

    pid = svc.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak RSS
    before = rss(pid, "VmRSS")
    poller = Poller(f"{svc.base}/healthz")
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    sampler = ReaderSampler(pid)
    sampling = threading.Thread(target=sampler.run, daemon=True)
    sampling.start()
    t0 = time.perf_counter()
    r = svc.http.post(case.path, content=counted(), headers={"content-type": case.content_type})
    elapsed = time.perf_counter() - t0
    poller.stop.set()
    sampler.stop.set()
    thread.join()
    sampling.join()
    peak = rss(pid, "VmHWM") - before
    body = r.json()
    worst = max(poller.latencies) if poller.latencies else 0.0
    median = statistics.median(poller.latencies) if poller.latencies else 0.0
    message = body.get("error", "")[:90].replace("|", "/")
    return (
        f"| {case.what} | {_kib(size)} | {r.status_code} {body.get('code', '')} | "
        f"{elapsed:.2f} s | {_kib(max(peak, 0))} | {_kib(sampler.peak) if sampler.peak else '-'} "
        f"| {median * 1000:.0f} / {worst * 1000:.0f} ms | {message} |"
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dis-hostile-", dir="/tmp"))
    work.chmod(0o755)
    server = EmbeddedPostgres(
        work / "data", database="bench", ephemeral=True, extra_settings=embedded_server_settings()
    )
    url = server.start()
    svc = None
    try:
        svc = Service(url, work)
        svc.http.post("/data-items/", json={"data_name": "warm-up"})
        print(
            "| input | sent | answer | time | peak memory | reader process peak "
            "| /healthz meanwhile (median / max) | message |\n|---|---|---|---|---|---|---|---|"
        )
        for case in CASES:
            print(measure(svc, case), flush=True)
    finally:
        if svc is not None:
            svc.proc.terminate()
            svc.proc.wait(60)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
