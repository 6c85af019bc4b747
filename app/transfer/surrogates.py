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


class SurrogateGuard:
    """A binary reader over `source` that raises a 400 at the first unpaired surrogate escape."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._tail = b""  # bytes read but not yet scanned (an escape may straddle two reads)
        self._offset = 0  # of the first byte of `_tail` in the document

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
        """How many bytes of `buffer` are checked; raises at an unpaired surrogate."""
        limit = len(buffer) if final else len(buffer) - _LONGEST
        scanned = max(limit, 0)
        if _CANDIDATE.search(buffer) is None:  # the usual case: nothing to pair up
            head = buffer[:scanned]
            if not final and (len(head) - len(head.rstrip(b"\\"))) % 2:
                scanned -= 1  # do not part a backslash from what it escapes
            self._offset += scanned
            return scanned
        for match in _ESCAPES.finditer(buffer):
            if match.start() >= limit:
                break
            scanned = max(scanned, match.end())
            if match.group(1) is not None and match.group(2) is None:
                self._refuse(match.group(1), self._offset + match.start())
            if match.group(3) is not None:
                self._refuse(match.group(3), self._offset + match.start())
        self._offset += scanned
        return scanned

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
