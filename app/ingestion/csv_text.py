"""A CSV upload as UTF-8 text for Polars: encoding detection, transcoding to a temporary file,
and the NUL-byte and line-length guards applied while the bytes stream past."""

from __future__ import annotations

import codecs
import itertools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.ingestion.tables import FileFormatError, FileLimitError

CHUNK_BYTES = 4 << 20
SNIFF_BYTES = 1 << 20
MAX_LINE_BYTES = 32 << 20
NUL = "\x00"  # separator for one-column files and line scans: NUL never reaches Polars
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _latin1_fallback(err: UnicodeError) -> tuple[str, int]:
    """Bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as Latin-1."""
    if not isinstance(err, UnicodeDecodeError):  # pragma: no cover - decode only
        raise err
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error("ingestion-latin-1", _latin1_fallback)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


class TextSource:
    """The upload as UTF-8 for Polars: the file itself, or a transcoded temporary copy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp: Path | None = None
        self.encoding = "utf-8"

    @property
    def file(self) -> Path:
        return self.temp or self.path

    def close(self) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)
            self.temp = None

    def prepare(self) -> None:
        with open(self.path, "rb") as f:
            head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"
            self._transcode("utf-16", "strict", "UTF-16")
            return
        offset = 0
        lines = _LineGuard()
        for chunk in _chunks(self.path):
            at = chunk.find(b"\x00")
            if at >= 0:
                raise _nul_error(offset + at)
            lines.feed(chunk)
            offset += len(chunk)
        self.encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"

    def not_utf8(self) -> None:
        """The upload is not valid UTF-8: Windows-1252 if it has no valid multi-byte UTF-8
        sequence at all, otherwise an error naming the first bad byte."""
        if self.temp is not None:  # pragma: no cover - transcoded files are valid UTF-8
            raise FileFormatError("The file could not be decoded as text.")
        bad = _first_invalid_utf8(self.path)
        if bad is not None and _has_utf8_multibyte(self.path):
            offset, line, byte = bad
            raise FileFormatError(
                f"The file is mostly UTF-8 but has an invalid byte 0x{byte:02X} at byte offset "
                f"{offset:,} (line {line:,}); save it as UTF-8 and upload it again.",
                details=[{"offset": offset, "line": line}],
            )
        self.encoding = "cp1252"
        self._transcode("cp1252", "ingestion-latin-1", "Windows-1252")

    def _transcode(self, codec: str, errors: str, label: str) -> None:
        decoder = codecs.getincrementaldecoder(codec)(errors)
        fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".csv")
        self.temp = Path(name)
        offset = 0
        lines = _LineGuard()
        with os.fdopen(fd, "wb") as out:
            for chunk in itertools.chain(_chunks(self.path), [b""]):
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    raise FileFormatError(
                        f"The file is not valid {label} text (near byte offset "
                        f"{offset + max(exc.start, 0):,}).",
                        details=[{"offset": offset + max(exc.start, 0)}],
                    ) from exc
                if NUL in text:
                    raise _nul_error(offset + text.index(NUL) * (2 if label == "UTF-16" else 1))
                encoded = text.encode("utf-8")
                lines.feed(encoded)
                out.write(encoded)
                offset += len(chunk)

    def sample(self) -> tuple[str, bool]:
        """The first 1 MiB as text, and whether that is the whole file."""
        with open(self.file, "rb") as f:
            data = f.read(SNIFF_BYTES + 1)
        whole = len(data) <= SNIFF_BYTES
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        return decoder.decode(data[:SNIFF_BYTES], final=whole).removeprefix("\ufeff"), whole


class _LineGuard:
    """Refuses a line longer than MAX_LINE_BYTES while the file streams past (in UTF-8, before
    Polars sees it): Polars and the checks after it hold a line several times over, so one 200 MB
    line took ~2 GB. Only newlines at chunk edges are looked for (C-speed find/rfind), so the
    cost does not grow with the number of lines; a line inside one chunk is shorter than the
    chunk, which is shorter than the limit."""

    def __init__(self) -> None:
        self.offset = 0  # of the chunk being fed
        self.start = 0  # where the current line starts
        self.line = 1

    def feed(self, chunk: bytes) -> None:
        assert len(chunk) <= MAX_LINE_BYTES
        first = chunk.find(b"\n")
        end = self.offset + (first if first >= 0 else len(chunk))
        if end - self.start > MAX_LINE_BYTES:
            raise FileLimitError(
                f"Line {self.line:,} of the file is longer than {MAX_LINE_BYTES >> 20} MiB (the "
                f"limit for one line); refusing the file.",
                details=[{"line": self.line, "limit_bytes": MAX_LINE_BYTES}],
            )
        if first >= 0:
            self.line += chunk.count(b"\n")
            self.start = self.offset + chunk.rfind(b"\n") + 1
        self.offset += len(chunk)


def _nul_error(offset: int) -> FileFormatError:
    return FileFormatError(
        f"The file contains NUL bytes (binary content, or UTF-16 text without a byte order "
        f"mark) at byte offset {offset:,}; a .csv file must be text.",
        details=[{"offset": offset}],
    )


def _first_invalid_utf8(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, line, byte value) of the first invalid UTF-8 byte, if any."""
    base, line, carry = 0, 1, b""
    for chunk in itertools.chain(_chunks(path), [b""]):
        buf = carry + chunk
        try:
            buf.decode("utf-8")
            used, carry = len(buf), b""
        except UnicodeDecodeError as exc:
            if chunk and exc.reason == "unexpected end of data":
                used, carry = exc.start, buf[exc.start :]
            else:
                return base + exc.start, line + buf.count(b"\n", 0, exc.start), buf[exc.start]
        line += buf.count(b"\n", 0, used)
        base += used
    return None


def _has_utf8_multibyte(path: Path) -> bool:
    tail = b""
    for chunk in _chunks(path):
        if _UTF8_MULTIBYTE.search(tail + chunk):
            return True
        tail = chunk[-3:]
    return False
