"""Reading a bundle as a stream (ijson, numbers as Decimal): everything but the rows as plain
values (`read_head`), then the rows in batches, each checked and converted through the
field-type registry into the row documents to write (`RowReader`)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import ijson

from app.core.digits import ascii_int
from app.core.errors import BadRequest, ErrorCode
from app.core.jsonexact import dumps
from app.fields.types import CellError, FieldTypeSpec, Stored, spec
from app.models import Field
from app.summary.service import FieldChange
from app.transfer.schemas import BUNDLE_FORMAT, BUNDLE_VERSION

BATCH_ROWS = 10_000
MAX_REPORTED = 100
KEYS = ("format", "version", "exported_at", "item", "fields", "widgets", "rows")


def _malformed(exc: Exception) -> BadRequest:
    reason = str(exc).strip() or type(exc).__name__
    return BadRequest(f"The bundle is not valid JSON: {reason}.", code=ErrorCode.MALFORMED_JSON)


def _build(events: Iterator[tuple[str, str, Any]], event: str, value: Any) -> Any:
    """The JSON value that starts with (`event`, `value`), read from `events`."""
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for _, ev, val in events:
        builder.event(ev, val)
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return builder.value


def _skip(events: Iterator[tuple[str, str, Any]], event: str) -> None:
    if event not in ("start_map", "start_array"):
        return
    depth = 1
    for _, ev, _ in events:
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return


def read_head(source: IO[bytes]) -> tuple[dict[str, Any], str | None]:
    """Every top-level member but `rows`, and the JSON kind of `rows` (None when absent);
    reads the whole document once (so malformed JSON anywhere is found here)."""
    source.seek(0)
    if not source.read(1):
        raise BadRequest("The bundle is empty.", code=ErrorCode.MALFORMED_JSON)
    source.seek(0)
    events = iter(ijson.parse(source, use_float=False))
    head: dict[str, Any] = {}
    rows_kind: str | None = None
    try:
        first = next(events)
        if first[1] != "start_map":
            raise BadRequest(
                f'A bundle is a JSON object {{"format": "{BUNDLE_FORMAT}", …}}, not this.'
            )
        seen: set[str] = set()
        for _, event, key in events:
            if event == "end_map":
                break
            _, ev, val = next(events)
            if key in seen:
                raise BadRequest(f"The bundle has the key {key!r} twice.")
            seen.add(key)
            if key == "rows":
                rows_kind = ev
                _skip(events, ev)
            elif key in KEYS:
                head[key] = _build(events, ev, val)
            else:
                raise BadRequest(
                    f"The bundle has an unknown key {key!r}; a version {BUNDLE_VERSION} bundle "
                    f"has {', '.join(KEYS)}.",
                    details=[{"field": str(key), "message": "unknown key"}],
                )
        for _ in events:  # trailing content is an error
            pass
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None
    return head, rows_kind


@dataclass
class RowBatch:
    records: list[tuple[int, str]] = field(default_factory=list)
    changes: dict[int, FieldChange] = field(default_factory=dict)
    control_chars: bool = False


@dataclass
class _Column:
    """A field as the rows reader uses it; values it has seen are remembered (columns repeat
    values a lot: regions, dates, flags), keyed with their JSON type so 1 and true differ."""

    field_id: int
    key: str  # `"<field id>":`, the document's key
    kind: FieldTypeSpec
    describe: str
    seen: dict[tuple[type, Any], tuple[Stored | None, str]] = field(default_factory=dict)

    def convert(self, value: Any) -> tuple[Stored | None, str]:
        """(stored value, JSON fragment); CellError when the value does not fit."""
        memo = (value.__class__, value) if value.__class__ in _SCALARS else None
        if memo is not None and (hit := self.seen.get(memo)) is not None:
            return hit
        stored = self.kind.parse(value)
        result = (stored, "" if stored is None else self.key + self.kind.json_fragment(stored))
        if memo is not None and len(self.seen) < MAX_REMEMBERED:
            self.seen[memo] = result
        return result


_SCALARS = frozenset({str, int, bool, Decimal})
MAX_REMEMBERED = 20_000


_CONTROL = re.compile(r"[\x00-\x1f]")


@dataclass
class RowReader:
    """Reads, checks and converts the bundle's rows (in a worker thread, batch by batch)."""

    rows: Iterator[Any]
    by_key: Mapping[str, Field]  # bundle field id (as in the rows) -> the new field
    max_rows: int
    count: int = 0
    last_ref: int = -1
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    columns: dict[str, _Column] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = {
            key: _Column(
                f.id,
                f'"{int(f.id)}":',
                spec(f.field_type),
                f"{f.field_type} field {f.field_label!r}",
            )
            for key, f in self.by_key.items()
        }

    @classmethod
    def over(cls, source: IO[bytes], by_key: Mapping[str, Field], max_rows: int) -> RowReader:
        """A reader of the rows of the bundle in `source` (read from its start)."""
        source.seek(0)
        return cls(iter(ijson.items(source, "rows.item", use_float=False)), by_key, max_rows)

    def _problem(self, problem: dict[str, Any]) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)

    def _ref(self, index: int, raw: Any) -> int | None:
        if raw is None:
            return self.last_ref + 1
        text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
        ref = ascii_int(text)
        if ref is None:
            self._problem(
                {"row": index, "field": "_row_ref", "value": raw, "message": "is not a row ref"}
            )
            return None
        if ref <= self.last_ref:
            self._problem(
                {
                    "row": index,
                    "field": "_row_ref",
                    "value": raw,
                    "message": f"must be greater than the previous row's ({self.last_ref})",
                }
            )
            return None
        return ref

    def _bad_value(self, index: int, key: str, value: Any, column: _Column, exc: Exception) -> None:
        shown = value[:200] if isinstance(value, str) else value
        if isinstance(shown, (dict, list)):
            shown = dumps(shown)[:200]
        self._problem(
            {"row": index, "field": key, "value": shown, "message": f"{exc} ({column.describe})"}
        )

    def next_batch(self) -> RowBatch | None:
        """The next rows' records and statistics changes; None at the end. After a problem
        the rest is still checked (to report every problem), not converted."""
        try:
            chunk = list(itertools.islice(self.rows, BATCH_ROWS))
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _malformed(exc) from None
        if not chunk:
            return None
        batch = RowBatch()
        columns = self.columns
        changes = batch.changes
        for raw in chunk:
            index = self.count
            self.count += 1
            if self.count > self.max_rows:
                raise BadRequest(
                    f"The bundle has more than {self.max_rows:,} rows (MAX_UPLOAD_ROWS)."
                )
            if not isinstance(raw, dict):
                self._problem(
                    {
                        "row": index,
                        "field": "rows",
                        "message": "must be an object keyed by field id",
                    }
                )
                continue
            ref = self._ref(index, raw.pop("_row_ref", None))
            bad = ref is None
            parts: list[str] = []
            for key, value in raw.items():
                column = columns.get(key)
                if column is None:
                    self._problem(
                        {"row": index, "field": key, "message": "is not a field id of the bundle"}
                    )
                    bad = True
                    continue
                try:
                    stored, fragment = column.convert(value)
                except CellError as exc:
                    self._bad_value(index, key, value, column, exc)
                    bad = True
                    continue
                if stored is None or bad or self.problem_count:
                    continue
                parts.append(fragment)
                changes.setdefault(column.field_id, FieldChange()).added.append(stored)
                if (
                    isinstance(stored, str)
                    and not batch.control_chars
                    and _CONTROL.search(stored) is not None
                ):
                    batch.control_chars = True
            if ref is not None:
                self.last_ref = ref
            if not bad and not self.problem_count:
                batch.records.append((ref, "{" + ",".join(parts) + "}"))  # type: ignore[arg-type]
        return batch
