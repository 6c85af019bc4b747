"""Reading a bundle as a stream (ijson, numbers as Decimal): everything but the rows as plain
values (`read_head`), then the rows in batches, each checked and converted through the
field-type registry into the row documents to write (`RowReader`).

The first pass (`read_head`) also holds the document to the caps of a JSON request body while
it streams in, before anything is built from it: nesting (MAX_JSON_DEPTH, plus the two levels
a bundle puts around a widget) and values (MAX_JSON_ITEMS array items, object members and
containers in everything but `rows`, and in each batch of rows the second pass builds at once;
it cuts the batches so). A bundle over a cap is a 400 that names it, after reading the document
once and building at most MAX_JSON_ITEMS values of it."""

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
from app.core.routing import MAX_JSON_DEPTH, MAX_JSON_ITEMS
from app.fieldtypes import CellError, Kind, Stored, kind_of
from app.models import Field
from app.summary.service import FieldChange
from app.transfer.schemas import BUNDLE_FORMAT, BUNDLE_VERSION
from app.transfer.surrogates import SurrogateGuard

BATCH_ROWS = 10_000
MAX_REPORTED = 100
KEYS = ("format", "version", "exported_at", "item", "fields", "widgets", "rows")
# A widget sits two levels deep in a bundle (the document, `widgets`): each may nest as deep as
# the body of POST …/widgets/ may, so that every exported bundle imports.
MAX_BUNDLE_DEPTH = MAX_JSON_DEPTH + 2
# Values built at once: everything but `rows`, and each batch of rows (as in one JSON body).
MAX_BUNDLE_VALUES = MAX_JSON_ITEMS

_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})

Events = Iterator[tuple[str, Any]]


def _malformed(exc: Exception) -> BadRequest:
    reason = str(exc).strip() or type(exc).__name__
    return BadRequest(f"The bundle is not valid JSON: {reason}.", code=ErrorCode.MALFORMED_JSON)


def _too_deep() -> BadRequest:
    return BadRequest(
        f"The bundle is nested more than {MAX_BUNDLE_DEPTH} levels deep (the limit: "
        f"MAX_JSON_DEPTH, {MAX_JSON_DEPTH} levels in a widget as in a request body, and the "
        "two levels of the bundle around it). Nothing was imported.",
        code=ErrorCode.MALFORMED_JSON,
    )


def _too_many(where: str) -> BadRequest:
    return BadRequest(
        f"The bundle holds more than {MAX_BUNDLE_VALUES:,} values (array items, object members "
        f"and containers) {where}; the limit (MAX_JSON_ITEMS) is that of a JSON request body. "
        "Nothing was imported.",
        details=[{"field": "rows" if "row" in where else "bundle", "message": "too many values"}],
    )


@dataclass
class Head:
    """What the first pass found: every top-level member but `rows` (as plain values), the JSON
    kind of `rows` (None when absent), and how many rows each batch of the second pass takes."""

    values: dict[str, Any]
    rows_kind: str | None
    batches: list[int]


@dataclass
class _Scan:
    """One pass over the document's events, counting nesting and values as they arrive."""

    events: Events
    head_values: int = 0

    def build(self, event: str, value: Any) -> Any:
        """The value of a top-level member that starts with (`event`, `value`)."""
        self.head_values += 1
        if event not in _OPEN:
            if self.head_values > MAX_BUNDLE_VALUES:
                raise _too_many("outside `rows`")
            return value
        builder = ijson.ObjectBuilder()
        builder.event(event, value)
        depth = 2  # the document, and this member's container
        count = self.head_values + 1
        for ev, val in self.events:
            if ev in _OPEN:
                depth += 1
                if depth > MAX_BUNDLE_DEPTH:
                    raise _too_deep()
                count += 2
            elif ev in _CLOSE:
                depth -= 1
                if depth == 1:
                    builder.event(ev, val)
                    break
            elif ev != "map_key":
                count += 1
            if count > MAX_BUNDLE_VALUES:
                raise _too_many("outside `rows`")
            builder.event(ev, val)
        self.head_values = count
        return builder.value

    def rows(self, event: str) -> list[int]:
        """Reads past `rows` (building nothing) and cuts it into batches of at most BATCH_ROWS
        rows and MAX_BUNDLE_VALUES values."""
        if event not in _OPEN:
            return []
        depth = 2
        batches: list[int] = []
        in_batch = batch_values = row_values = 0
        for ev, _ in self.events:
            if ev in _OPEN:
                depth += 1
                if depth > MAX_BUNDLE_DEPTH:
                    raise _too_deep()
                row_values += 2
            elif ev in _CLOSE:
                depth -= 1
                if depth == 1:
                    break
            elif ev == "map_key":
                continue
            else:
                row_values += 1
            if depth > 2:  # inside a row
                if row_values > MAX_BUNDLE_VALUES:
                    raise _too_many(f"in row {sum(batches) + in_batch}")
                continue
            # a row ended
            if in_batch == BATCH_ROWS or batch_values + row_values > MAX_BUNDLE_VALUES:
                batches.append(in_batch)
                in_batch = batch_values = 0
            in_batch += 1
            batch_values += row_values
            row_values = 0
        if in_batch:
            batches.append(in_batch)
        return batches


def read_head(source: IO[bytes]) -> Head:
    """Every top-level member but `rows`, the JSON kind of `rows` and its batches; reads the
    whole document once (so malformed JSON anywhere, and a cap passed anywhere, is found here)."""
    source.seek(0)
    if not source.read(1):
        raise BadRequest("The bundle is empty.", code=ErrorCode.MALFORMED_JSON)
    source.seek(0)
    scan = _Scan(iter(ijson.basic_parse(SurrogateGuard(source), use_float=False)))
    events = scan.events
    head: dict[str, Any] = {}
    rows_kind: str | None = None
    batches: list[int] = []
    try:
        first = next(events)
        if first[0] != "start_map":
            raise BadRequest(
                f'A bundle is a JSON object {{"format": "{BUNDLE_FORMAT}", …}}, not this.'
            )
        seen: set[str] = set()
        for event, key in events:
            if event == "end_map":
                break
            ev, val = next(events)
            if key in seen:
                raise BadRequest(f"The bundle has the key {key!r} twice.")
            seen.add(key)
            if key == "rows":
                rows_kind = ev
                batches = scan.rows(ev)
            elif key in KEYS:
                head[key] = scan.build(ev, val)
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
    return Head(head, rows_kind, batches)


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
    kind: Kind
    describe: str
    required: bool = False
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
    batches: Iterator[int]  # rows per batch, as the first pass cut them
    count: int = 0
    last_ref: int = -1
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    columns: dict[str, _Column] = field(init=False)
    required: list[tuple[str, str]] = field(init=False)  # (bundle field id, label)

    def __post_init__(self) -> None:
        self.columns = {
            key: _Column(
                f.id,
                f'"{int(f.id)}":',
                kind_of(f.field_type),
                f"{f.field_type} field {f.field_label!r}",
                bool(f.field_required),
            )
            for key, f in self.by_key.items()
        }
        self.required = [(key, f.field_label) for key, f in self.by_key.items() if f.field_required]

    @classmethod
    def over(
        cls, source: IO[bytes], head: Head, by_key: Mapping[str, Field], max_rows: int
    ) -> RowReader:
        """A reader of the rows of the bundle in `source` (read from its start), in the batches
        `read_head` cut them into."""
        source.seek(0)
        rows = iter(ijson.items(source, "rows.item", use_float=False))
        return cls(rows, by_key, max_rows, iter(head.batches))

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

    def _required_empty(self, index: int, raw: dict[str, Any], columns: dict[str, _Column]) -> bool:
        """Report each required field the row leaves empty (as new rows must fill them, so
        must imported ones: a bundle cannot bring in what the API would refuse)."""
        found = False
        for key, label in self.required:
            value = raw.get(key)
            try:
                empty = value is None or columns[key].convert(value)[0] is None
            except CellError:
                empty = False  # a bad value, reported as such
            if empty:
                found = True
                self._problem(
                    {
                        "row": index,
                        "field": key,
                        "message": f"is empty, and field {label!r} is required (to import the "
                        "rows as they are, set its field_required to false in the bundle)",
                    }
                )
        return found

    def next_batch(self) -> RowBatch | None:
        """The next rows' records and statistics changes; None at the end. After a problem
        the rest is still checked (to report every problem), not converted."""
        try:
            chunk = list(itertools.islice(self.rows, next(self.batches, BATCH_ROWS)))
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
            filled = 0  # required fields this row gives a value (or a bad one, reported)
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
                    filled += column.required
                    continue
                if stored is None:
                    continue
                filled += column.required
                if bad or self.problem_count:
                    continue
                parts.append(fragment)
                changes.setdefault(column.field_id, FieldChange()).added.append(stored)
                if (
                    isinstance(stored, str)
                    and not batch.control_chars
                    and _CONTROL.search(stored) is not None
                ):
                    batch.control_chars = True
            if filled < len(self.required):
                bad = self._required_empty(index, raw, columns) or bad
            if ref is not None:
                self.last_ref = ref
            if not bad and not self.problem_count:
                batch.records.append((ref, "{" + ",".join(parts) + "}"))  # type: ignore[arg-type]
        return batch
