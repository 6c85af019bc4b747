"""Receiving an upload: the multipart body is parsed as it streams in and the file part is
written straight to a spool file on disk (never held in memory, never copied twice), hashed on
the way. The body-size limit is enforced by the middleware while bytes arrive; a client that
disconnects or an error at any point removes the spool file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import python_multipart
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from app.core.errors import BadRequest, ErrorCode

log = logging.getLogger("app.ingestion.upload")

FILE_FIELD = "data_file"
MAX_TEXT_FIELD_BYTES = 64 * 1024
MAX_TEXT_FIELDS = 20


class UploadAborted(BadRequest):
    """The client went away mid-upload (nobody will read the answer; it is logged)."""


@dataclass
class SpooledFile:
    path: Path
    filename: str
    size: int
    sha256: str

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: SpooledFile | None = None

    def cleanup(self) -> None:
        if self.file is not None:
            self.file.remove()


def clean_filename(raw: str) -> str:
    """The name part only (no directories, no control characters), at most 255 characters."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


def spool_path(spool_dir: Path) -> Path:
    # the pid lets a restarted process remove what a killed one left behind
    return spool_dir / f"upload-{os.getpid()}-{uuid.uuid4().hex}.part"


def remove_stale_spools(spool_dir: Path) -> int:
    """Delete spool files (uploads, downloads, and what a workbook's reader writes next to an
    upload: its table, a copy without error cells) of processes that no longer run (a killed
    service leaves them)."""
    removed = 0
    if not spool_dir.is_dir():
        return 0
    for path in [*spool_dir.glob("upload-*.part*"), *spool_dir.glob("download-*.part")]:
        try:
            pid = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        alive = Path(f"/proc/{pid}").exists() and pid != os.getpid()
        old = time.time() - path.stat().st_mtime > 24 * 3600
        if not alive or (pid != os.getpid() and old):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    if removed:
        log.info("removed %d leftover upload spool file(s) in %s", removed, spool_dir)
    return removed


class _Receiver:
    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self.form = UploadForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._text: bytearray | None = None
        self._out: object | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._files = 0

    # python-multipart callbacks -----------------------------------------------------------
    def on_part_begin(self) -> None:
        self._disposition = b""
        self._name = None
        self._text = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise BadRequest("A multipart part has no name in its Content-Disposition header.")
        self._name = name.decode("utf-8", "replace")
        if b"filename" in options:
            if self._name != FILE_FIELD:
                raise BadRequest(
                    f"Unexpected file field {self._name!r}: send the file as `{FILE_FIELD}`."
                )
            self._files += 1
            if self._files > 1:
                raise BadRequest(f"Send exactly one file in `{FILE_FIELD}`.")
            filename = clean_filename(options[b"filename"].decode("utf-8", "replace"))
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            path = spool_path(self.spool_dir)
            self._out = path.open("wb")
            self.form.file = SpooledFile(path=path, filename=filename, size=0, sha256="")
        else:
            if len(self.form.fields) >= MAX_TEXT_FIELDS:
                raise BadRequest("Too many form fields.")
            self._text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._text is not None:
            self._text += chunk
            if len(self._text) > MAX_TEXT_FIELD_BYTES:
                raise BadRequest(f"Form field {self._name!r} is longer than 64 KiB.")
        elif self._out is not None:
            self._out.write(chunk)  # type: ignore[attr-defined]
            self._hash.update(chunk)
            self._size += len(chunk)

    def on_part_end(self) -> None:
        if self._text is not None and self._name is not None:
            try:
                self.form.fields[self._name] = self._text.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"Form field {self._name!r} is not UTF-8 text.") from None
            self._text = None
        elif self._out is not None and self.form.file is not None:
            self._out.close()  # type: ignore[attr-defined]
            self._out = None
            self.form.file.size = self._size
            self.form.file.sha256 = self._hash.hexdigest()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()  # type: ignore[attr-defined]
            self._out = None


async def receive_form(request: Request, spool_dir: Path) -> UploadForm:
    """Parse a multipart/form-data request, spooling the `data_file` part to disk."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest(
            f"Send the file as multipart/form-data (the file in `{FILE_FIELD}`), "
            f"not {content_type or 'a body without Content-Type'}.",
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart Content-Type has no boundary.")
    receiver = _Receiver(spool_dir)
    callbacks = {
        "on_part_begin": receiver.on_part_begin,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
    }
    try:
        parser = python_multipart.MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if receiver.form.file is not None and receiver._out is not None:
            raise BadRequest("The multipart body ended in the middle of the file.")
    except ClientDisconnect:
        receiver.close()
        receiver.form.cleanup()
        raise UploadAborted(
            "The client disconnected during the upload; nothing was stored."
        ) from None
    except FormParserError as exc:
        receiver.close()
        receiver.form.cleanup()
        raise BadRequest(f"The multipart body is malformed: {exc}.") from None
    except BaseException:
        receiver.close()
        receiver.form.cleanup()
        raise
    return receiver.form
