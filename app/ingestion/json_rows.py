"""The rows of a JSON upload as they are decoded: one text cell per key (`JsonRows`).

The objects come from a parser that gives numbers as their text (`parse_int=str`,
`parse_float=str`: a number and a string are the same cell). A nested value (an object or an
array) becomes its compact JSON text, where a number must stay a number: the rare row that has
one is decoded once more from its text, numbers marked (`Number`), to write it."""

from __future__ import annotations

import array
import json
from collections import Counter
from typing import Any

import polars as pl

from app.core.routing import MAX_JSON_DEPTH
from app.ingestion.tables import FileFormatError, ReadLimits, too_many_columns, too_many_rows

BATCH_CELLS = 1 << 20  # cells held as Python values before they become a Polars frame
_string = json.encoder.encode_basestring


class Number(str):
    """A number's text, exactly as the file writes it (in a nested value)."""


_NESTED = object()  # a cell that holds an object or an array, written once the row is complete
# true, false and null: singletons, looked up by identity (objects and arrays cannot be hashed)
_WORDS: dict[int, str | None] = {id(True): "true", id(False): "false", id(None): None}
# (the text, its start and end): where an object is, to decode it again when it has nesting
Span = tuple[str, int, int]


class _TooDeep(Exception):
    pass


class JsonRows:
    """Rows as they are decoded: cells by column (keys in the order first seen), held as
    Python values for a batch, then as Polars frames."""

    def __init__(self, limits: ReadLimits, *, by_line: bool) -> None:
        self.limits = limits
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self.nested: Counter[int] = Counter()
        self._batch: list[list[str | None]] = []
        self._batch_numbers: list[int] = []
        self._frames: list[pl.DataFrame] = []
        self._keyless = 0  # rows before the first key: no frame can hold them yet
        self._numbers = array.array("q") if by_line else None
        self._exact = json.JSONDecoder(parse_float=Number, parse_int=Number)
        self.count = 0

    def add(self, obj: dict[str, Any], number: int, span: Span) -> None:
        """Row `number` (the object's position, or its line), decoded from `span`."""
        self.count += 1
        if self.count > self.limits.max_rows:
            raise too_many_rows(self.limits)
        cells: list[Any]
        words = _WORDS
        if len(obj) == len(self.keys) and list(obj) == self.keys:  # the usual: the same keys
            cells = [v if v.__class__ is str else words.get(id(v), _NESTED) for v in obj.values()]
        else:
            cells = [None] * len(self.keys)
            for key, v in obj.items():
                i = self.index.get(key)
                if i is None:
                    i = self._new_column(key, number)
                    cells.append(None)
                cells[i] = v if v.__class__ is str else words.get(id(v), _NESTED)
        if _NESTED in cells:
            self._write_nested(cells, span, number)
        self._batch.append(cells)
        self._batch_numbers.append(number)
        if len(self._batch) * max(len(self.keys), 1) >= BATCH_CELLS:
            self._flush()

    def _where(self, number: int) -> str:
        return f"Line {number}" if self._numbers is not None else f"Object {number} of the array"

    def _new_column(self, key: str, number: int) -> int:
        where = self._where(number)
        if "\x00" in key:
            raise FileFormatError(
                f"{where} has a key holding \\u0000 (a NUL character), which cannot be stored.",
            )
        if (lone := _lone_surrogate(key)) is not None:
            raise _surrogate_error(f"{where} has a key that", lone)
        if len(self.keys) >= self.limits.max_columns:
            raise too_many_columns(len(self.keys) + 1, self.limits)
        self.index[key] = len(self.keys)
        self.keys.append(key)
        return len(self.keys) - 1

    def _write_nested(self, cells: list[Any], span: Span, number: int) -> None:
        """The JSON text of the row's nested values, from the row decoded again with its
        numbers marked (it decoded once already: it does again)."""
        exact: dict[str, Any] = self._exact.raw_decode(*span[:2])[0]
        for i, cell in enumerate(cells):
            if cell is not _NESTED:
                continue
            key = self.keys[i]
            self.nested[i] += 1
            out: list[str] = []
            try:
                _encode(exact[key], out, 1)
            except _TooDeep:
                raise FileFormatError(
                    f"{self._where(number)}, key {key!r}: the value is nested more than {MAX_JSON_DEPTH} "
                    "levels deep (the limit of a JSON request body too).",
                    details=[{"key": key, "limit": MAX_JSON_DEPTH}],
                ) from None
            cells[i] = "".join(out)

    def _flush(self) -> None:
        if not self._batch:
            return
        width = len(self.keys)
        if width == 0:
            self._keyless += len(self._batch)
        else:
            for cells in self._batch:
                if len(cells) < width:
                    cells.extend([None] * (width - len(cells)))
            columns = zip(*self._batch, strict=True)
            try:
                frame = pl.DataFrame(
                    [pl.Series(f"c{i}", c, dtype=pl.String) for i, c in enumerate(columns)]
                )
            except UnicodeEncodeError:
                raise self._surrogate_cell() from None
            self._refuse_nul(frame)
            self._frames.append(frame)
        if self._numbers is not None:
            self._numbers.extend(self._batch_numbers)
        self._batch, self._batch_numbers = [], []

    def _place(self, j: int) -> tuple[str, int]:
        """Where the batch's row `j` is ("line 7", "object 3"), and its number."""
        number = self._batch_numbers[j]
        return (f"line {number}" if self._numbers is not None else f"object {number}"), number

    def _surrogate_cell(self) -> FileFormatError:
        """The first cell of the batch that holds half a surrogate pair (a JSON escape such as
        \\ud800 without its other half: the parser lets it through, no text can hold it)."""
        for j, cells in enumerate(self._batch):
            for i, value in enumerate(cells):
                if value is not None and (lone := _lone_surrogate(value)) is not None:
                    place, number = self._place(j)
                    error = _surrogate_error(f"The value of {self.keys[i]!r} in {place}", lone)
                    error.details = [{"row": number, "key": self.keys[i], "escape": lone}]
                    return error
        return FileFormatError("The file holds text that cannot be stored as UTF-8.")

    def _refuse_nul(self, frame: pl.DataFrame) -> None:
        for i, name in enumerate(frame.columns):
            hits = frame[name].str.contains("\x00", literal=True).fill_null(False).arg_true()
            if not hits.is_empty():
                place, number = self._place(int(hits[0]))
                raise FileFormatError(
                    f"The value of {self.keys[i]!r} in {place} holds \\u0000 (a NUL "
                    "character), which cannot be stored.",
                    details=[{"row": number, "key": self.keys[i]}],
                )

    def result(self) -> tuple[pl.DataFrame, pl.Series]:
        self._flush()
        if self.count == 0:
            raise FileFormatError("The file holds no objects: there are no rows.")
        if not self.keys:
            raise FileFormatError("The objects have no keys: there are no columns.")
        names = [f"c{i}" for i in range(len(self.keys))]
        frames = self._frames
        if self._keyless:
            nulls = pl.repeat(None, self._keyless, dtype=pl.String, eager=True)
            frames = [pl.DataFrame([nulls.alias(n) for n in names]), *frames]
        frame = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
        frame = frame.select(names)
        if self._numbers is None:
            rows = pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64)
        else:
            rows = pl.Series(self._numbers, dtype=pl.Int64)
        return frame, rows


def _encode(value: Any, out: list[str], depth: int) -> None:
    """Compact JSON text of a nested value: keys in their order, numbers as written."""
    if depth > MAX_JSON_DEPTH:
        raise _TooDeep
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif kind is Number:
        out.append(value)
    elif kind is dict:
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            out.append(f",{_string(key)}:" if n else f"{_string(key)}:")
            _encode(item, out, depth + 1)
        out.append("}")
    elif kind is list:
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode(item, out, depth + 1)
        out.append("]")
    else:
        out.append("null" if value is None else "true" if value is True else "false")


def _lone_surrogate(text: str) -> str | None:
    """The escape of the first half of a surrogate pair `text` holds alone (`\\ud800`), if
    any: the parser turns such an escape into a character no UTF-8 text can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"
    return None


def _surrogate_error(what: str, escape: str) -> FileFormatError:
    return FileFormatError(
        f"{what} holds {escape}: half of a UTF-16 surrogate pair, without its other half. No "
        "text can store it; replace it (for example with \\ufffd).",
        details=[{"escape": escape}],
    )
