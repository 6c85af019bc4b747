"""JSON uploads: an array of objects (``.json``) or one object per line (``.ndjson``,
``.jsonl``), read into the same table of text cells a CSV file gives, so that inference,
conversion and the limits treat them alike.

Columns
    The keys of the objects, in the order first seen; a key an object lacks is an empty cell.
    (Labels then follow the rules of every header: trimmed, blank -> ``Column N``, duplicates
    ignoring case -> `` (2)``.)
Cells
    A string as it is; a number exactly as written (``0.1``, ``12345678901234567890``, ``1e3``:
    never through a float); ``true``/``false`` as those words, which inference reads as
    boolean; ``null`` as an empty cell; an object or an array as its JSON text (compact, keys in
    their order, numbers as written), which inference keeps as text.
Rows
    Numbered by the object's position in the array (1 is the first), or by its line in an NDJSON
    file, in notes and in error messages. Blank lines of an NDJSON file are skipped.
Limits
    Those of CSV (rows, columns, characters per cell), rows and columns checked as the file
    streams. One object may take at most MAX_RECORD_CHARS characters of JSON text and nest
    MAX_JSON_DEPTH levels below it (as a request body may), so what one row builds in memory is
    bounded, whatever the file holds.
Refused (400, naming the line, and the object's position in an array)
    Anything but an array at the top of a ``.json`` file, an item or a line that is not an
    object, invalid JSON, ``NaN``/``Infinity``, text that is not UTF-8 (or UTF-16 with a byte
    order mark), a ``\\ud800`` escape without its other half (no text can hold it), and
    ``\\u0000`` (PostgreSQL cannot store it).

The text is decoded as it is read, 1 MiB at a time; the parser (the standard library's C
scanner, numbers handed over as their text) decodes one object at a time from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from app.core.routing import MAX_JSON_DEPTH
from app.ingestion.json_rows import JsonRows
from app.ingestion.json_text import (
    CHUNK_BYTES,
    ENCODING_NAMES,
    LINE_WS,
    WS,
    JsonText,
    skip,
)
from app.ingestion.tables import FileFormatError, FileLimitError, Parsed, ReadLimits

MAX_RECORD_CHARS = 8 << 20
_MARGIN = 16  # a parse error this close to the end of the text read so far may be a cut
_KINDS = {"{": "an object", "[": "an array", '"': "a string", "t": "true", "f": "false"}


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def _is_not_object(ch: str) -> str:
    """What a value starting with `ch` is, when an object was expected."""
    if ch in _KINDS:
        return f"is {_KINDS[ch]}, not an object"
    if ch == "n":
        return "is null, not an object"
    if ch in "-0123456789":
        return "is a number, not an object"
    return f"is not valid JSON (it starts with {ch!r})"


def read_json(path: Path, limits: ReadLimits, *, lines: bool) -> Parsed:
    """An array of objects, or (`lines`) one object per line."""
    with open(path, "rb") as f:
        text = JsonText(f)
        table = JsonRows(limits, by_line=lines)
        # numbers as their text: a cell holds what the file wrote (0.1, 1e3, 12345678901234567890)
        decoder = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_no_constants)
        if lines:
            blank = _read_lines(text, table, decoder)
        else:
            _read_array(text, table, decoder)
            blank = 0
    frame, rows = table.result()
    fmt: Literal["json", "ndjson"] = "ndjson" if lines else "json"
    objects = f"{frame.height:,} object{'s' if frame.height > 1 else ''}"
    what = f"NDJSON: {objects}, one per line" if lines else f"JSON: an array of {objects}"
    keys = len(table.keys)
    notes = [
        f"Encoding: {ENCODING_NAMES[text.encoding]}.",
        f"{what}; their keys are the columns, in the order first seen (a key an object lacks "
        "is an empty cell)."
        if keys > 1
        else f"{what}; their one key is the column.",
    ]
    if blank:
        notes.append(f"Skipped {blank:,} blank line{'s' if blank > 1 else ''}.")
    for i, count in sorted(table.nested.items()):
        notes.append(
            f"Column {table.keys[i]!r}: {count:,} nested value{'s' if count > 1 else ''} "
            "(objects or arrays) kept as JSON text."
        )
    return Parsed(list(table.keys), frame, rows, fmt, notes, encoding=text.encoding)


# ----------------------------------------------------------------------------- the layouts


def _read_array(text: JsonText, table: JsonRows, decoder: json.JSONDecoder) -> None:
    i = text.skip_ws(0)
    first = text.at(i)
    if first is None:
        raise FileFormatError("The file is empty.")
    if first != "[":
        line, column = text.where(i)
        what = _is_not_object(first)
        if "JSON" in what:
            problem = f"The file {what} at line {line}, character {column}"
        else:
            holds = "one object" if first == "{" else what.split(",")[0].removeprefix("is ")
            problem = f"The JSON file holds {holds} at the top level, not an array of objects"
        raise FileFormatError(
            f"{problem}. Upload [{{…}}, {{…}}] (one object per row), or one object per line as "
            "a .ndjson/.jsonl file.",
            details=[{"line": line, "character": column}],
        )
    i = text.skip_ws(i + 1)
    if text.at(i) == "]":
        return _after_array(text, i + 1)
    item = 0
    while True:
        ch = text.at(i)
        item += 1
        if ch is None:
            raise _not_closed(text, item - 1)
        if ch != "{":
            line, column = text.where(i)
            raise FileFormatError(
                f"Item {item} of the array (line {line}, character {column}) "
                f'{_is_not_object(ch)}; every item is one row, {{"column": value, …}}.',
                details=[{"row": item, "line": line, "character": column}],
            )
        obj, end = _decode_item(text, decoder, i, item)
        table.add(obj, item, (text.buf, i, end))
        i = text.skip_ws(end)
        ch = text.at(i)
        if ch == "]":
            return _after_array(text, i + 1)
        if ch is None:
            raise _not_closed(text, item)
        if ch != ",":
            line, column = text.where(i)
            raise FileFormatError(
                f"After object {item} of the array (line {line}, character {column}) comes "
                f"{ch!r}, where a comma or the array's closing bracket belongs.",
                details=[{"row": item, "line": line, "character": column}],
            )
        i = text.skip_ws(i + 1)
        if text.at(i) == "]":
            line, column = text.where(i)
            raise FileFormatError(
                f"The array has a comma after its last object (object {item}, line {line}); "
                "JSON allows no trailing comma.",
                details=[{"row": item, "line": line, "character": column}],
            )
        i = text.drop(i)


def _after_array(text: JsonText, i: int) -> None:
    i = text.skip_ws(i)
    if text.at(i) is not None:
        line, column = text.where(i)
        raise FileFormatError(
            f"The file goes on after the array's closing bracket (line {line}, character "
            f"{column}); a JSON file holds one array.",
            details=[{"line": line, "character": column}],
        )


def _not_closed(text: JsonText, items: int) -> FileFormatError:
    line, _ = text.where(len(text.buf))
    return FileFormatError(
        f"The file ends (line {line}) before the array is closed, after {items:,} "
        f"object{'s' if items != 1 else ''}: "
        "is it truncated?",
        details=[{"line": line, "objects": items}],
    )


def _decode_item(
    text: JsonText, decoder: json.JSONDecoder, start: int, item: int
) -> tuple[dict[str, Any], int]:
    """The object starting at `start`, reading on while it is cut by the end of the text read
    so far (up to MAX_RECORD_CHARS)."""
    while True:
        try:
            obj, end = decoder.raw_decode(text.buf, start)
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text.buf) - _MARGIN or exc.msg.startswith("Unterminated string")
            if cut and not text.eof:
                if len(text.buf) - start > MAX_RECORD_CHARS:
                    raise _too_long(text, start, f"Object {item} of the array") from None
                text.more(max(CHUNK_BYTES, len(text.buf) - start))
                continue
            if cut and skip(WS, text.buf, exc.pos) == len(text.buf):
                line, _ = text.where(start)
                raise FileFormatError(
                    f"The file ends inside object {item} of the array (which starts on line "
                    f"{line}): is it truncated?",
                    details=[{"row": item, "line": line}],
                ) from None
            line, column = text.where(exc.pos)
            raise FileFormatError(
                f"The JSON is not valid at line {line}, character {column} (in object {item} of "
                f"the array): {exc.msg}.",
                details=[{"row": item, "line": line, "character": column}],
            ) from None
        except RecursionError:
            raise _too_deep(text, start, f"Object {item} of the array") from None
        except ValueError as exc:  # NaN, Infinity
            line, _ = text.where(start)
            raise FileFormatError(
                f"Object {item} of the array (line {line}): {exc}.",
                details=[{"row": item, "line": line}],
            ) from None
        if end - start > MAX_RECORD_CHARS:
            raise _too_long(text, start, f"Object {item} of the array")
        return obj, end


def _read_lines(text: JsonText, table: JsonRows, decoder: json.JSONDecoder) -> int:
    """Every line's object; returns how many lines were blank."""
    pos = line = blank = 0
    while True:
        nl = text.buf.find("\n", pos)
        while nl < 0 and text.more():
            if len(text.buf) - pos > MAX_RECORD_CHARS:
                raise _too_long(text, pos, f"Line {line + 1}")
            nl = text.buf.find("\n", pos)
        if nl < 0 and pos >= len(text.buf):
            return blank
        stop = nl if nl >= 0 else len(text.buf)
        line += 1
        i = skip(LINE_WS, text.buf, pos, stop)
        if i == stop:
            blank += 1
        else:
            obj, end = _decode_line(text, decoder, i, stop, line, last=nl < 0)
            table.add(obj, line, (text.buf, i, end))
        if nl < 0:
            return blank
        pos = text.drop(nl + 1)


def _decode_line(
    text: JsonText, decoder: json.JSONDecoder, start: int, stop: int, line: int, *, last: bool
) -> tuple[dict[str, Any], int]:
    """The object of the line [start, stop) (`last`: the file's last line, without a line
    break after it)."""
    ch = text.buf[start]
    if ch != "{":
        raise FileFormatError(
            f"Line {line} {_is_not_object(ch)}; every line of an NDJSON file is one row, "
            '{"column": value, …}.',
            details=[{"row": line, "line": line}],
        )
    if stop - start > MAX_RECORD_CHARS:
        raise _too_long(text, start, f"Line {line}")
    try:
        obj, end = decoder.raw_decode(text.buf, start)
    except json.JSONDecodeError as exc:
        if exc.pos >= stop and not last:
            raise _not_on_line(line) from None
        _, column = text.where(min(exc.pos, stop))
        raise FileFormatError(
            f"Line {line} is not valid JSON (at character {column}): {exc.msg}.",
            details=[{"row": line, "line": line, "character": column}],
        ) from None
    except RecursionError:
        raise _too_deep(text, start, f"Line {line}") from None
    except ValueError as exc:  # NaN, Infinity
        raise FileFormatError(
            f"Line {line}: {exc}.", details=[{"row": line, "line": line}]
        ) from None
    if end > stop:
        raise _not_on_line(line)
    rest = skip(LINE_WS, text.buf, end, stop)
    if rest < stop:
        raise FileFormatError(
            f"Line {line} goes on after its object ({text.buf[rest : rest + 20]!r}); an NDJSON "
            "line holds one object.",
            details=[{"row": line, "line": line}],
        )
    found: dict[str, Any] = obj  # (an object: it starts with "{")
    return found, end


def _not_on_line(line: int) -> FileFormatError:
    return FileFormatError(
        f"The object on line {line} does not end on that line; an NDJSON file holds one whole "
        "object per line (a .json file holds an array of them, laid out freely).",
        details=[{"row": line, "line": line}],
    )


def _place(text: JsonText, start: int, place: str) -> tuple[str, int]:
    """`place` ("Object 3 of the array", "Line 7") with the line it starts on when that is not
    already said, and that line."""
    line, _ = text.where(start)
    return (place if place.startswith("Line") else f"{place} (from line {line})"), line


def _too_long(text: JsonText, start: int, place: str) -> FileLimitError:
    where, line = _place(text, start, place)
    return FileLimitError(
        f"{where} is longer than {MAX_RECORD_CHARS >> 20} MiB of JSON text, the limit for one row.",
        details=[{"line": line, "limit_chars": MAX_RECORD_CHARS}],
    )


def _too_deep(text: JsonText, start: int, place: str) -> FileFormatError:
    where, line = _place(text, start, place)
    return FileFormatError(
        f"{where} is nested more than {MAX_JSON_DEPTH} levels deep (the limit of a JSON "
        "request body too).",
        details=[{"line": line, "limit": MAX_JSON_DEPTH}],
    )
