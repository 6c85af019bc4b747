"""A CSV upload as UTF-8 text for Polars: encoding detection, transcoding to a temporary file,
line endings, and the NUL-byte and line-length guards applied while the bytes stream past.

Line endings
    LF, CRLF and lone CR (classic Mac) all end a record, also mixed in one file. Polars only
    knows LF (and CRLF), so a file with a lone CR outside quotes is rewritten once, streaming
    and quote-aware, with LF for those CRs (a quoted field keeps its CR, LF and CRLF exactly).
    Every other file is read as it is: while it streams past (`_LineScan`) its kinds of line
    break are surveyed at C speed (a search for CR finds none in an LF file; a CRLF file costs
    two counts and one regex search per chunk). Only a file showing more than one kind is read
    once more, quote-aware, to tell which kinds end records (a CRLF file with LF inside quoted
    cells, as Excel writes them, is CRLF).

One module, a little over 400 lines, on purpose: decoding, the NUL and line-length guards and
the line-ending survey are one streaming pass over the same chunks (`TextSource` feeds
`_LineScan` while it reads or transcodes), and the quote-aware pass reuses that chunk reader, the
limits and the NUL joiner, so a split would only move those across a file boundary.
"""

from __future__ import annotations

import codecs
import itertools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.ingestion.tables import FileFormatError, FileLimitError

CHUNK_BYTES = 4 << 20
SNIFF_BYTES = 1 << 20
MAX_LINE_BYTES = 32 << 20
NUL = "\x00"  # separator for one-column files and line scans: NUL never reaches Polars
_NUL = b"\x00"  # (NUL is refused in a file: it joins the parts of a chunk outside quotes)
_LONE_CR = re.compile(rb"\r(?!\n)")
_BARE_LF = re.compile(rb"\n(?<!\r\n)")  # (the look-behind sees before `pos` too)
_CRLF = re.compile(rb"\r\n")
_MANY_HITS = 4096  # line breaks inside quotes in one chunk, placed one by one
CR, LF, CRLF = "CR", "LF", "CRLF"
_ENDING_NAMES = {CRLF: "CRLF (Windows)", LF: "LF (Unix)", CR: "CR (classic Mac)"}
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


def line_endings_note(kinds: frozenset[str]) -> str | None:
    """The note on the kinds of line break that end records ("Line endings: CRLF (Windows).",
    "Line endings: mixed: CRLF and LF."); None when no record ends in one."""
    shown = [k for k in (CRLF, LF, CR) if k in kinds]
    if not shown:
        return None
    if len(shown) == 1:
        return f"Line endings: {_ENDING_NAMES[shown[0]]}."
    return f"Line endings: mixed: {', '.join(shown[:-1])} and {shown[-1]}."


class TextSource:
    """The upload as UTF-8 for Polars: the file itself, or a transcoded temporary copy (also
    when lone CRs had to become LFs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp: Path | None = None
        self.encoding = "utf-8"
        self.transcoded = False
        self.line_endings: frozenset[str] = frozenset()

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
        lines = _LineScan()
        for chunk in _chunks(self.path):
            at = chunk.find(b"\x00")
            if at >= 0:
                raise _nul_error(offset + at)
            if lines.feed(chunk):
                raise _long_line(self.path, lines.start)
            offset += len(chunk)
        self.encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        self._settle_line_endings(lines)

    def not_utf8(self) -> None:
        """The upload is not valid UTF-8: Windows-1252 if it has no valid multi-byte UTF-8
        sequence at all, otherwise an error naming the first bad byte."""
        if self.transcoded:  # pragma: no cover - transcoded files are valid UTF-8
            raise FileFormatError("The file could not be decoded as text.")
        self.close()  # (a copy with LF for lone CRs: transcoding makes a new one)
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
        self.transcoded = True
        offset = 0
        lines = _LineScan()
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
                long_line = lines.feed(encoded)
                out.write(encoded)
                if long_line:
                    out.flush()
                    raise _long_line(self.temp, lines.start)
                offset += len(chunk)
        self._settle_line_endings(lines)

    def _settle_line_endings(self, lines: _LineScan) -> None:
        """The kinds of line break that end records; lone CRs outside quotes become LFs (in a
        new temporary copy) so that Polars sees them end records."""
        lines.finish()
        if not lines.needs_pass:
            self.line_endings = frozenset(lines.kinds)
            return
        if not lines.lone_cr:  # more than one kind: which end records (nothing to rewrite)
            self.line_endings = _record_endings(self.file)
            return
        converter = _Converter()
        self.line_endings = converter.run(self.file)
        if converter.copy is not None:
            self.close()
            self.temp = converter.copy

    def sample(self) -> tuple[str, bool]:
        """The first 1 MiB as text, and whether that is the whole file."""
        with open(self.file, "rb") as f:
            data = f.read(SNIFF_BYTES + 1)
        whole = len(data) <= SNIFF_BYTES
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        return decoder.decode(data[:SNIFF_BYTES], final=whole).removeprefix("\ufeff"), whole


class _LineScan:
    """While the file streams past: refuses a line longer than MAX_LINE_BYTES (Polars and the
    checks after it hold a line several times over, so one 200 MB line took ~2 GB), and
    surveys the kinds of line break (LF, CRLF, lone CR), quote-unaware.

    Only the first and last line break of a chunk are looked for (C-speed find/rfind), so the
    cost does not grow with the number of lines; a line inside one chunk is shorter than the
    chunk, which is shorter than the limit. An LF file has no CR, which one search finds; a
    chunk with CRs is searched (regex with a literal first byte) for a lone CR and for an LF
    without a CR before it. A lone CR anywhere, or more than one kind, calls for the
    quote-aware pass (`needs_pass`); past a lone CR nothing more is surveyed, past two kinds
    only lone CRs are looked for.
    """

    def __init__(self) -> None:
        self.offset = 0  # of the chunk being fed
        self.start = 0  # where the current line starts
        self.kinds: set[str] = set()
        self.lone_cr = False
        self._pending_cr = False  # the last chunk ended with a CR (an LF may follow)

    @property
    def needs_pass(self) -> bool:
        return self.lone_cr or len(self.kinds) > 1

    def feed(self, chunk: bytes) -> bool:
        """True when the line running into this chunk is over the limit (it starts at
        `self.start`)."""
        assert len(chunk) <= MAX_LINE_BYTES
        lf, cr = chunk.find(b"\n"), chunk.find(b"\r")
        first = lf if cr < 0 else cr if lf < 0 else min(lf, cr)
        end = self.offset + (first if first >= 0 else len(chunk))
        if end - self.start > MAX_LINE_BYTES:
            return True
        if first >= 0:
            last = chunk.rfind(b"\n") if cr < 0 else max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            self.start = self.offset + last + 1
        self.offset += len(chunk)
        if not self.lone_cr and (first >= 0 or self._pending_cr):
            self._survey(chunk, lf >= 0, cr >= 0)
        return False

    def _survey(self, chunk: bytes, has_lf: bool, has_cr: bool) -> None:
        begin = 0
        if self._pending_cr:
            self._pending_cr = False
            if not chunk.startswith(b"\n"):
                self.lone_cr = True
                return
            self.kinds.add(CRLF)
            begin = 1
        if not has_cr:
            if has_lf and chunk.find(b"\n", begin) >= 0:
                self.kinds.add(LF)
            return
        end = len(chunk)
        if chunk.endswith(b"\r"):
            self._pending_cr = True
            end -= 1
        if _LONE_CR.search(chunk, begin, end) is not None:
            self.lone_cr = True
        elif len(self.kinds) < 2:  # every CR here ends a CRLF
            if chunk.find(b"\r", begin, end) >= 0:
                self.kinds.add(CRLF)
            if has_lf and _BARE_LF.search(chunk, begin) is not None:
                self.kinds.add(LF)

    def finish(self) -> None:
        if self._pending_cr:  # the file ends with a CR
            self._pending_cr = False
            self.lone_cr = True


class _Converter:
    """The kinds of line break that end records, and a copy of the text with LF for every lone
    CR outside quotes, written only from the first such CR on (a file whose lone CRs are all
    inside quoted fields is read, not copied).

    Each chunk is split at its quotes (C speed); with the quote state carried from the chunks
    before, every other part is outside quotes. Those parts are joined with NUL (never in the
    text) to be counted and rewritten at once, then put back. A CR ending a chunk waits for
    the next one (an LF may follow it)."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.copy: Path | None = None

    def run(self, path: Path) -> frozenset[str]:
        try:
            return self._run(path)
        except BaseException:
            if self.copy is not None:
                self.copy.unlink(missing_ok=True)
                self.copy = None
            raise

    def _run(self, path: Path) -> frozenset[str]:
        inside = False
        carry = b""
        done = 0  # bytes of the file before `data`
        out: BinaryIO | None = None
        try:
            for chunk in itertools.chain(_chunks(path), [b""]):
                data = carry + chunk if carry else chunk
                carry = b""
                if chunk and data.endswith(b"\r"):
                    data, carry = data[:-1], b"\r"
                parts = data.split(b'"')
                first = 1 if inside else 0
                outside = parts[first::2]
                blob = outside[0] if len(outside) == 1 else _NUL.join(outside)
                crs = blob.count(b"\r")
                crlfs = blob.count(b"\r\n") if crs else 0
                if crlfs:
                    self.kinds.add(CRLF)
                if blob.count(b"\n") > crlfs:
                    self.kinds.add(LF)
                size = len(data)
                if crs > crlfs:
                    self.kinds.add(CR)
                    if out is None:
                        out = self._start_copy(path, done)
                    blob = _LONE_CR.sub(b"\n", blob)
                    parts[first::2] = [blob] if len(outside) == 1 else blob.split(_NUL)
                    data = b'"'.join(parts)
                if out is not None:
                    out.write(data)
                done += size
                inside ^= (len(parts) - 1) % 2 == 1
        finally:
            if out is not None:
                out.close()
        return frozenset(self.kinds)

    def _start_copy(self, path: Path, upto: int) -> BinaryIO:
        """A temporary file holding the first `upto` bytes of the text (nothing to rewrite
        there), for the rest to be written to."""
        fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".csv")
        self.copy = Path(name)
        out = os.fdopen(fd, "wb")
        with open(path, "rb") as src:
            while upto > 0 and (piece := src.read(min(upto, CHUNK_BYTES))):
                out.write(piece)
                upto -= len(piece)
        return out


def _record_endings(path: Path) -> frozenset[str]:
    """Which of CRLF and LF end records, in a file that has both somewhere and no lone CR: a
    line break ends a record when the quotes before it are even. Each CRLF and each LF
    without a CR is found by a regex search (C speed) and placed by counting the quotes since
    the one before; the first of each kind outside quotes settles it (a CRLF file with LF in
    quoted cells looks at every one of those LFs, and no further than its first CRLF). A chunk
    with very many of them inside quotes is counted at once instead (`_outside_kinds`)."""
    found: set[str] = set()
    inside = False  # at the end of the chunk before
    tail = b""  # the chunk before's last byte: a CR there and an LF here make a CRLF
    for chunk in _chunks(path):
        data = tail + chunk
        start = inside ^ (tail == b'"')  # at the start of data
        end: bool | None = None  # at its end, when a search went through it
        for kind, pattern in ((CRLF, _CRLF), (LF, _BARE_LF)):
            if kind in found:
                continue
            state, at = start, 0
            for n, m in enumerate(pattern.finditer(data, len(tail) if kind == LF else 0)):
                if n == _MANY_HITS:
                    found |= _outside_kinds(chunk, inside, split_crlf=tail == b"\r")
                    break
                state ^= data.count(b'"', at, m.start()) % 2 == 1
                at = m.start()
                if not state:
                    found.add(kind)
                    break
            else:
                end = state ^ (data.count(b'"', at) % 2 == 1)
        if len(found) == 2:
            break
        inside = (start ^ (data.count(b'"') % 2 == 1)) if end is None else end
        tail = chunk[-1:]
    return frozenset(found)


def _outside_kinds(chunk: bytes, inside: bool, *, split_crlf: bool) -> set[str]:
    """CRLF and LF outside quotes in `chunk` (quote state `inside` at its start; `split_crlf`:
    the chunk before ended with a CR)."""
    kinds = set()
    if split_crlf and chunk.startswith(b"\n"):
        if not inside:
            kinds.add(CRLF)
        chunk = chunk[1:]
    parts = chunk.split(b'"')
    blob = _NUL.join(parts[1 if inside else 0 :: 2])
    crlfs = blob.count(b"\r\n")
    if crlfs:
        kinds.add(CRLF)
    if blob.count(b"\n") > crlfs:
        kinds.add(LF)
    return kinds


def _breaks(data: bytes, end: int) -> int:
    """Line breaks (LF, CRLF, lone CR) in data[:end]."""
    crlf = data.count(b"\r\n", 0, end)
    return data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - crlf


def _line_at(path: Path, offset: int) -> int:
    """The 1-based line number of the byte at `offset` (any line break counts)."""
    line, base, last = 1, 0, b""
    for chunk in _chunks(path):
        if base >= offset:
            break
        end = min(len(chunk), offset - base)
        line += _breaks(chunk, end)
        if last == b"\r" and end and chunk.startswith(b"\n"):
            line -= 1  # a CRLF split between chunks was counted twice
        last = chunk[end - 1 : end]
        base += len(chunk)
    return line


def _long_line(path: Path, start: int) -> FileLimitError:
    line = _line_at(path, start)
    return FileLimitError(
        f"Line {line:,} of the file is longer than {MAX_LINE_BYTES >> 20} MiB (the limit for "
        f"one line); refusing the file.",
        details=[{"line": line, "limit_bytes": MAX_LINE_BYTES}],
    )


def _nul_error(offset: int) -> FileFormatError:
    return FileFormatError(
        f"The file contains NUL bytes (binary content, or UTF-16 text without a byte order "
        f"mark) at byte offset {offset:,}; a .csv file must be text.",
        details=[{"offset": offset}],
    )


def _first_invalid_utf8(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, line, byte value) of the first invalid UTF-8 byte, if any."""
    base, carry = 0, b""
    for chunk in itertools.chain(_chunks(path), [b""]):
        buf = carry + chunk
        try:
            buf.decode("utf-8")
            used, carry = len(buf), b""
        except UnicodeDecodeError as exc:
            if chunk and exc.reason == "unexpected end of data":
                used, carry = exc.start, buf[exc.start :]
            else:
                return base + exc.start, _line_at(path, base + exc.start), buf[exc.start]
        base += used
    return None


def _has_utf8_multibyte(path: Path) -> bool:
    tail = b""
    for chunk in _chunks(path):
        if _UTF8_MULTIBYTE.search(tail + chunk):
            return True
        tail = chunk[-3:]
    return False
