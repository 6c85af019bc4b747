"""Workbooks whose used range spans far more than they hold: the extent of every sheet is
checked before the reader allocates it, and whatever gets past the checks is read in a child
process with an address-space budget, so that no workbook can take the service down."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.ingestion.extent import column_letters, column_number
from app.ingestion.readers import read_table
from app.ingestion.tables import FileFormatError, FileLimitError, RawTable, ReadLimits
from tests.conftest import Caller, new_account
from tests.fixtures.service import Service
from tests.helpers import assert_error
from tests.ingestion import files, hostile_files
from tests.jobs.helpers import start_append, start_create, wait_job

CREATE = "/data-items/create-from-file/"


@pytest.fixture
def spool() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dis-extent-") as d:
        yield Path(d)


def read(spool: Path, name: str, data: bytes, **limits: Any) -> RawTable:
    """read_table with `limits` (ReadLimits' fields) in place of the default ones."""
    path = spool / name
    path.write_bytes(data)
    return read_table(path, name, limits=ReadLimits(**limits))


def test_column_letters_round_trip() -> None:
    for n in (1, 26, 27, 52, 702, 703, 1000, 16384):
        assert column_number(column_letters(n)) == n
    assert column_letters(1000) == "ALL" and column_letters(16384) == "XFD"


@pytest.mark.parametrize(
    ("far", "fragment"),
    [
        ("XFD1048576", "out to column XFD (16,384 columns, at XFD1048576); the limit is 1,000"),
        ("ALL20000", "spanning 20,000 rows by 1,000 columns = 20,000,000 cells (at ALL20000)"),
        ("A6000001", "down to row 6,000,001; the limit is 5,000,000 data rows"),
        ("ZZZZ2", "at ZZZZ2); the limit is 1,000 columns"),
        ("A99999999999999999999", "down to row 99,999,999,999,999,999,999"),
    ],
)
def test_a_far_cell_is_refused_before_any_reader_allocates(
    spool: Path, far: str, fragment: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(FileLimitError) as caught:
        read(spool, "sparse.xlsx", hostile_files.sparse_xlsx(far))
    assert fragment in caught.value.message, caught.value.message
    assert caught.value.details[0]["sheet"] == "S"
    assert time.perf_counter() - started < 5


def test_a_dimension_that_lies_small_does_not_hide_the_far_cell(spool: Path) -> None:
    with pytest.raises(FileLimitError, match="XFD1048576"):
        read(spool, "liar.xlsx", hostile_files.sparse_xlsx("XFD1048576", dimension="A1:B2"))


def test_rows_without_r_still_have_their_cells_measured(spool: Path) -> None:
    data = hostile_files.sparse_xlsx("ALL20000", rows_without_r=True)
    with pytest.raises(FileLimitError, match="ALL20000"):
        read(spool, "no-r.xlsx", data)


def test_a_declared_dimension_past_the_limits_is_refused(spool: Path) -> None:
    data = hostile_files.dense_xlsx(3, 2, dimension="A1:XFD1048576")
    with pytest.raises(FileLimitError, match="declares a used range out to column XFD"):
        read(spool, "declared.xlsx", data)


def test_an_honest_sheet_reads_and_the_cell_limit_is_a_setting(spool: Path) -> None:
    data = hostile_files.dense_xlsx(50, 12, dimension="A1:L50")
    table = read(spool, "dense.xlsx", data)
    assert table.frame.shape == (49, 12)
    with pytest.raises(FileLimitError, match="spanning 50 rows by 12 columns = 600 cells"):
        read(spool, "dense.xlsx", data, max_cells=599)
    with pytest.raises(FileLimitError, match="the limit is 11 columns"):
        read(spool, "dense.xlsx", data, max_columns=11)


def test_a_cell_out_of_row_order_is_found(spool: Path) -> None:
    """Rows 1-50 in order, but row 2 also holds a cell at AB90000: references beyond the
    largest row seen so far are looked at one by one, wherever they are."""
    data = hostile_files.dense_xlsx(50, 3, stray=(2, "AB90000"))
    with pytest.raises(FileLimitError, match="AB90000"):
        read(spool, "order.xlsx", data, max_cells=2_000_000)


def test_xls_declared_dimensions_and_cell_records_are_both_checked(spool: Path) -> None:
    with pytest.raises(FileLimitError, match=r"declares a used range spanning .* \(at IV65536\)"):
        read(spool, "sparse.xls", hostile_files.sparse_xls())
    # DIMENSIONS rewritten to claim two cells: the cell records still say IV65536
    lying = hostile_files.sparse_xls(dimensions=(2, 1))
    with pytest.raises(FileLimitError, match=r"has cells spanning .* \(at IV65536\)"):
        read(spool, "lying.xls", lying)
    with pytest.raises(FileLimitError, match="the limit is 100 columns"):
        read(spool, "wide.xls", hostile_files.sparse_xls(2, 120), max_columns=100)
    table = read(spool, "fine.xls", hostile_files.sparse_xls(30, 3))
    assert table.frame.shape == (1, 2)


def test_a_workbook_past_the_memory_budget_is_a_clean_error(spool: Path) -> None:
    """With the cell limit lifted, A1 + ALL1048576 passes every extent check and makes the
    reader allocate a billion cells: its own process dies, this one reports it."""
    data = hostile_files.sparse_xlsx("ALL1048576")
    started = time.perf_counter()
    with pytest.raises(FileLimitError) as caught:
        read(spool, "huge.xlsx", data, max_cells=10**13, excel_memory_mb=1024)
    message = caught.value.message
    assert "1,024 MiB memory budget" in message and "SIGABRT" in message, message
    assert time.perf_counter() - started < 30
    assert os.getpid()  # (still here)
    assert [p.name for p in spool.iterdir()] == ["huge.xlsx"]  # the child's table file is gone


def test_a_workbook_that_takes_too_long_is_stopped(spool: Path) -> None:
    data = files.xlsx_bytes({"S": [["a", "b"], *([i, str(i)] for i in range(20_000))]})
    with pytest.raises(FileLimitError, match="longer than 0 s"):
        read(spool, "slow.xlsx", data, excel_timeout=0.001)


def test_a_damaged_workbook_is_still_a_format_error(spool: Path) -> None:
    with pytest.raises(FileFormatError, match="damaged"):
        read(spool, "cut.xlsx", files.truncated(files.xlsx_bytes({"S": [["a"], [1]]})))
    with pytest.raises(FileFormatError):
        read(spool, "cut.xls", files.truncated(files.xls_bytes({"S": [["a"], [1]]})))


# ----------------------------------------------------------------------------- through HTTP


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        ("xfd.xlsx", lambda: hostile_files.sparse_xlsx("XFD1048576"), "XFD1048576"),
        ("all.xlsx", lambda: hostile_files.sparse_xlsx("ALL20000"), "EXCEL_MAX_CELLS"),
        ("iv.xls", hostile_files.sparse_xls, "IV65536"),
    ],
)
async def test_sparse_workbooks_are_400_sync_async_and_on_append(
    api: Caller, name: str, make: Callable[[], bytes], fragment: str
) -> None:
    data = make()
    r = await api.client.post(
        CREATE, data={"data_name": "sparse"}, files={"data_file": (name, data)}
    )
    body = assert_error(r, 400, "INVALID_FILE")
    assert fragment in body["error"] and body["details"][0]["cell"], body
    job = await start_create(api.client, data, filename=name, name="sparse")
    done = await wait_job(api.client, job["id"])
    assert done["status"] == "failed" and fragment in done["error"]["error"], done
    item = (
        await api.client.post(
            CREATE,
            data={"data_name": "kept"},
            files={"data_file": ("ok.csv", files.csv_bytes([["head"], ["x"]]))},
        )
    ).json()
    r = await api.client.post(
        f"/data-items/{item['id']}/append-from-file/", files={"data_file": (name, data)}
    )
    assert fragment in assert_error(r, 400, "INVALID_FILE")["error"]
    job = await start_append(api.client, item["id"], data)
    assert (await wait_job(api.client, job["id"]))["status"] == "failed"
    rows = (await api.client.get(f"/data-items/{item['id']}/rows/")).json()
    assert rows["total"] == 1


@pytest.mark.asyncio
async def test_the_service_process_survives_a_reader_that_dies(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A real `python -m app serve` with the cell limit lifted: the workbook makes the reader
    abort (as it did the whole service before), synchronously and as a job; the same process
    answers 400, then serves another account, then reads a good workbook."""
    _, _, key = await new_account(sessionmaker, "Sparse")
    _, _, other = await new_account(sessionmaker, "Bystander")
    with tempfile.TemporaryDirectory(prefix="dis-reader-") as base:
        service = Service(
            Path(base) / "data",
            database_url=database_url,
            MIGRATE_ON_START="false",
            EXCEL_MAX_CELLS=str(10**13),
            EXCEL_MEMORY_MB="1024",
            WORKER_POLL_SECONDS="0.2",
            UPLOAD_DIR=str(Path(base) / "spool"),
        )
        await asyncio.to_thread(service.start)
        try:
            assert service.proc is not None
            pid = service.proc.pid
            async with httpx.AsyncClient(
                base_url=service.api, headers={"X-Api-Key": key}, timeout=60
            ) as client:
                data = hostile_files.sparse_xlsx("ALL1048576")
                r = await client.post(
                    CREATE, data={"data_name": "boom"}, files={"data_file": ("boom.xlsx", data)}
                )
                assert "memory budget" in assert_error(r, 400, "INVALID_FILE")["error"]
                job = await start_create(client, data, filename="boom.xlsx")
                done = await wait_job(client, job["id"])
                assert done["status"] == "failed" and "memory budget" in done["error"]["error"]
                good = files.xlsx_bytes({"S": [["a", "b"], [1, "x"]]})
                r = await client.post(
                    CREATE, data={"data_name": "good"}, files={"data_file": ("g.xlsx", good)}
                )
                assert r.status_code == 201, r.text
            r = await asyncio.to_thread(
                httpx.get, f"{service.api}/data-items/", headers={"X-Api-Key": other}, timeout=10
            )
            assert r.status_code == 200
            assert service.proc.poll() is None and service.proc.pid == pid
        finally:
            await asyncio.to_thread(service.stop)
