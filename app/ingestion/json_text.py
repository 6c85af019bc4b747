"""The text of a JSON upload, decoded as it is read, with the position of any character in it
(line and character) for error messages."""

from __future__ import annotations

import codecs
import re
from typing import BinaryIO

from app.ingestion.tables import FileFormatError

CHUNK_BYTES = 1 << 20
WS = re.compile(r"[ \t\r\n]*")
LINE_WS = re.compile(r"[ \t\r]*")
ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (byte order mark removed)",
    "utf-16": "UTF-16 (byte order mark)",
}


def skip(pattern: re.Pattern[str], text: str, i: int, stop: int | None = None) -> int:
    """The end of `pattern` (whitespace, possibly none) matched at `i`."""
    found = pattern.match(text, i, len(text) if stop is None else stop)
    assert found is not None  # (the patterns match the empty string)
    return found.end()


class JsonText:
    """The file's text, decoded as it is read. `buf` holds the text from where the reader last
    let go of it (`drop`); positions are indices into it."""

    def __init__(self, f: BinaryIO) -> None:
        self._file = f
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            self.encoding, skip = "utf-8-sig", 3
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding, skip = "utf-16", 0  # (the codec reads the mark and drops it)
        else:
            self.encoding, skip = "utf-8", 0
        f.seek(skip)
        self._decoder = codecs.getincrementaldecoder(self.encoding.removesuffix("-sig"))()
        self._bytes = skip
        self.buf = ""
        self.eof = False
        self.lines_dropped = 0  # line breaks in the text dropped so far
        self.column_base = 0  # characters since the last line break, at buf[0]

    def more(self, size: int = CHUNK_BYTES) -> bool:
        """Read (at least) `size` more bytes into `buf`; False at the end of the file."""
        if self.eof:
            return False
        data = self._file.read(size)
        try:
            decoded = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            at = self._bytes + max(exc.start, 0)
            name = "UTF-16" if self.encoding == "utf-16" else "UTF-8"
            raise FileFormatError(
                f"The file is not valid {name} text (a bad byte sequence at byte {at:,}); a "
                "JSON file is UTF-8.",
                details=[{"byte": at}],
            ) from None
        self._bytes += len(data)
        self.eof = not data
        self.buf += decoded
        return True

    def at(self, i: int) -> str | None:
        """The character at `i`, reading on when needed; None at the end of the file."""
        while i >= len(self.buf):
            if not self.more():
                return None
        return self.buf[i]

    def skip_ws(self, i: int) -> int:
        """The position of the first non-whitespace character from `i` (len(buf) at the end)."""
        while True:
            i = skip(WS, self.buf, i)
            if i < len(self.buf) or not self.more():
                return i

    def drop(self, i: int) -> int:
        """Let go of the text before `i` (once there is enough of it); `i`'s new position."""
        if i < CHUNK_BYTES:
            return i
        breaks = self.buf.count("\n", 0, i)
        last = self.buf.rfind("\n", 0, i)
        self.lines_dropped += breaks
        self.column_base = i - last - 1 if last >= 0 else self.column_base + i
        self.buf = self.buf[i:]
        return 0

    def where(self, i: int) -> tuple[int, int]:
        """(line, column) of position `i`, both from 1."""
        line = self.lines_dropped + self.buf.count("\n", 0, i) + 1
        last = self.buf.rfind("\n", 0, i)
        column = i - last if last >= 0 else self.column_base + i + 1
        return line, column
