"""Workbooks are read in a child process of their own, so that no workbook, whatever it holds,
can take the serving process down.

The reader (calamine, in Rust) aborts the whole process when an allocation fails, and a crafted
file can make it allocate without bound. The child is forked from a small fork server that has
already imported Polars and fastexcel (a fork costs a few milliseconds, not an interpreter
start), limits its own address space to EXCEL_MEMORY_MB, checks the sheets' extents
(`extent.py`), reads the sheet, and writes the table as an Arrow IPC file next to the upload.
If it runs out of memory, crashes or takes longer than EXCEL_TIMEOUT_SECONDS, the upload gets
a 400 saying so, and nothing else notices.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import polars as pl

from app.ingestion.cell_errors import clean_copy
from app.ingestion.tables import (
    FileFormatError,
    FileLimitError,
    Parsed,
    ReadLimits,
    SourceFormat,
)

log = logging.getLogger("app.ingestion")

_CONTEXT = multiprocessing.get_context("forkserver")
# The fork server imports the reader once; each child is a fork of it. (Without this list it
# would also import __main__, which is uvicorn or pytest.)
_CONTEXT.set_forkserver_preload(["app.ingestion.excel"])


def start_reader_server() -> None:
    """Start the fork server now (about 0.3 s: an interpreter importing Polars and fastexcel),
    so that the first workbook upload does not wait for it. Safe to call from any thread."""
    from multiprocessing import forkserver

    try:
        forkserver.ensure_running()
    except Exception:  # the first upload tries again, and reports what fails
        log.warning("could not start the workbook reader's fork server", exc_info=True)


def read_excel_isolated(
    path: Path, fmt: SourceFormat, sheet: str | int | None, limits: ReadLimits
) -> Parsed:
    """`excel.read_excel` in a child process with limits.excel_memory_mb of address space."""
    out = path.with_name(path.name + ".table.arrow")
    receive, send = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(
        target=_child,
        args=(str(path), fmt, sheet, limits, str(out), send),
        name="data-items-excel-reader",
        daemon=True,
    )
    started = time.perf_counter()
    try:
        child.start()
        send.close()
        message = _receive(receive, child, limits.excel_timeout)
        child.join(10)
        if message is None:
            raise _failure(fmt, child.exitcode, limits, time.perf_counter() - started)
        if message[0] == "error":
            _, limit, text, details = message
            raise (FileLimitError if limit else FileFormatError)(text, details=details)
        _, headers, notes, sheet_name, cell_errors = message
        frame = pl.read_ipc(out)
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
            child.join(5)
        out.unlink(missing_ok=True)
        clean_copy(path, fmt).unlink(missing_ok=True)  # (left behind by a killed child)
    rows = pl.int_range(2, frame.height + 2, eager=True, dtype=pl.Int64)
    return Parsed(headers, frame, rows, fmt, notes, sheet=sheet_name, cell_errors=cell_errors)


def _receive(
    receive: Connection, child: multiprocessing.process.BaseProcess, timeout: float
) -> tuple[Any, ...] | None:
    """The child's one message, or None if it died (or ran out of time) without sending it."""
    try:
        if not receive.poll(timeout):
            log.warning(
                "workbook reader pid %s ran out of time (%.0f s): killed", child.pid, timeout
            )
            child.kill()
            return ("error", True, _timeout_text(timeout), [{"limit_seconds": timeout}])
        message: tuple[Any, ...] = receive.recv()
        return message
    except (EOFError, OSError):
        return None


def _timeout_text(timeout: float) -> str:
    return (
        f"The workbook took longer than {timeout:,.0f} s to read (EXCEL_TIMEOUT_SECONDS); "
        "save it as CSV, which reads much faster."
    )


def _failure(
    fmt: SourceFormat, exitcode: int | None, limits: ReadLimits, seconds: float
) -> FileFormatError:
    how = (
        f"signal {signal.Signals(-exitcode).name}"
        if exitcode is not None and exitcode < 0 and -exitcode in signal.valid_signals()
        else f"exit code {exitcode}"
    )
    log.warning(
        "workbook reader failed (%s) after %.2f s, memory budget %d MiB",
        how,
        seconds,
        limits.excel_memory_mb,
    )
    return FileLimitError(
        _budget_text(fmt, how, limits),
        details=[{"limit_mib": limits.excel_memory_mb, "reader": how}],
    )


def _budget_text(fmt: SourceFormat, how: str, limits: ReadLimits) -> str:
    return (
        f"The .{fmt} workbook could not be read: the reader stopped ({how}), most likely because "
        f"the file needs more than its {limits.excel_memory_mb:,} MiB memory budget "
        "(EXCEL_MEMORY_MB). A sheet whose used range spans far more cells than it holds (a "
        "stray cell far below or to the right of the data) does this; so can a damaged file."
    )


def _child(
    path: str,
    fmt: SourceFormat,
    sheet: str | int | None,
    limits: ReadLimits,
    out: str,
    send: Connection,
) -> None:  # pragma: no cover - runs in the child process (covered by the upload tests)
    budget = limits.excel_memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort leaves no core file behind
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the reader's own warnings and panic backtraces: the parent logs
    os.environ["RUST_BACKTRACE"] = "0"
    from app.ingestion.excel import read_excel

    try:
        parsed = read_excel(Path(path), fmt, sheet, limits)
        parsed.frame.write_ipc(out, compression="uncompressed")
    except FileFormatError as exc:
        send.send(("error", isinstance(exc, FileLimitError), exc.message, exc.details))
    except MemoryError:
        send.send(("error", True, _budget_text(fmt, "out of memory", limits), []))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        send.send(("error", False, f"The .{fmt} workbook could not be read: {first}", []))
    else:
        send.send(("ok", parsed.headers, parsed.notes, parsed.sheet, parsed.cell_errors))
    finally:
        send.close()
