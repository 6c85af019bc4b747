"""Unpaired UTF-16 surrogate escapes (`\\ud800` with no low half after it, or a lone `\\udc00`)
in a bundle's JSON text.

JSON allows them, no text can hold them: PostgreSQL refuses them, and the streaming parser
(ijson's C backend) quietly turns a lone one in a value into `?` and one in a key or a name into
bytes it cannot decode. So a bundle is scanned for them as it is read, and one is a 400 that
names it and where it is, like the same text sent to the rows API.

The scan runs over the raw bytes at C speed (one regular expression per chunk): an escaped
backslash (`\\\\`) is consumed as a pair, so `\\\\ud800` (a backslash, then the letters) is not
mistaken for an escape.
"""

from __future__ import annotations

import re
from typing import IO

from app.core.errors import BadRequest, ErrorCode

# A backslash pair, or a high surrogate (optionally followed by its low half), or a lone low one.
_ESCAPES = re.compile(
    rb"\\\\|\\u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|\\u([dD][c-fC-F][0-9a-fA-F]{2})"
)
_CANDIDATE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONGEST = 12  # a whole pair: \uXXXX\uXXXX
_ANY_ESCAPE = re.compile(rb"\\.", re.DOTALL)
MAX_STRING_BYTES = 2 * 2**20


class SurrogateGuard:
    """A binary reader over `source` that raises a 400 at the first unpaired surrogate escape,
    and in a string longer than MAX_STRING_BYTES."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._tail = b""  # bytes read but not yet scanned (an escape may straddle two reads)
        self._offset = 0  # of the first byte of `_tail` in the document
        self._open_at: int | None = None  # where the string the scan is inside began

    def read(self, size: int = -1) -> bytes:
        """The next bytes, all of them scanned: the last few bytes of a read wait for the next
        one (an escape may straddle two reads), so the parser never sees an unchecked byte."""
        if size == 0:  # a probe of the stream's kind, not its end
            return b""
        while True:
            data = self._source.read(size)
            buffer = self._tail + data
            scanned = self._scan(buffer, final=not data)
            self._tail = buffer[scanned:]
            if scanned or not data:
                return buffer[:scanned]

    def _scan(self, buffer: bytes, *, final: bool) -> int:
        """How many bytes of `buffer` are checked; raises at an unpaired surrogate, or in a
        string longer than MAX_STRING_BYTES."""
        limit = len(buffer) if final else len(buffer) - _LONGEST
        scanned = max(limit, 0)
        if _CANDIDATE.search(buffer) is not None:  # rare: escapes to pair up
            for match in _ESCAPES.finditer(buffer):
                if match.start() >= limit:
                    break
                scanned = max(scanned, match.end())
                if match.group(1) is not None and match.group(2) is None:
                    self._refuse(match.group(1), self._offset + match.start())
                if match.group(3) is not None:
                    self._refuse(match.group(3), self._offset + match.start())
        head = buffer[:scanned]
        if not final and (len(head) - len(head.rstrip(b"\\"))) % 2:
            scanned -= 1  # do not part a backslash from what it escapes
            head = head[:-1]
        self._strings(head)
        self._offset += scanned
        return scanned

    def _strings(self, segment: bytes) -> None:
        """Follows whether the document is inside a string (unescaped quotes) and since where;
        refuses a string longer than MAX_STRING_BYTES. The C parser re-reads a string that spans
        reads from its start on every read: a 20 MB string cost it 28 s of CPU, growing with the
        square of the length. No value a bundle may hold is near the cap (a cell is at most
        100,000 characters: 1.2 MB even as surrogate-pair escapes)."""
        plain = _ANY_ESCAPE.sub(b"", segment)
        quotes = plain.count(b'"')
        end = self._offset + len(segment)
        if quotes:
            opens = (self._open_at is not None) != (quotes % 2 == 1)
            # where the string still open at the end began: its quote's place among the
            # unescaped bytes, counted back from the end (a little late: never too strict)
            self._open_at = end - (len(plain) - plain.rfind(b'"')) if opens else None
        if self._open_at is not None and end - self._open_at > MAX_STRING_BYTES:
            raise BadRequest(
                f"The bundle has a string longer than {MAX_STRING_BYTES // 2**20} MiB of JSON "
                f"text, starting at byte {self._open_at}; no name, label or cell is that long "
                "(a cell holds at most 100,000 characters). Nothing was imported.",
                code=ErrorCode.MALFORMED_JSON,
                details=[{"field": "bundle", "message": "string too long"}],
            )

    @staticmethod
    def _refuse(hexdigits: bytes, offset: int) -> None:
        escape = "\\u" + hexdigits.decode("ascii").lower()
        raise BadRequest(
            f"The bundle holds {escape} at byte {offset}: half of a UTF-16 surrogate pair, "
            "without its other half. No text can store it (PostgreSQL refuses it); replace it "
            "(for example with \\ufffd). Nothing was imported.",
            code=ErrorCode.MALFORMED_JSON,
            details=[{"field": "bundle", "message": f"unpaired surrogate {escape}"}],
        )
