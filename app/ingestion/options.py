"""What an upload's form may ask besides the file: types set by the user instead of inferred
(`field_types`), which column goes into which field (`column_map`) and the fields that identify
a row for an upsert (`key_fields`). Read from the form's text fields (JSON) before anything is
read from the file, checked against the file's headers once it is read, and kept in an import
job's parameters as they were given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.digits import ascii_int
from app.core.errors import BadRequest
from app.fieldtypes import FieldType

SET_BY_USER = "set by field_types"  # a column's type reason when the user set its type
MAX_OPTION_ENTRIES = 2_000  # at most one per column (MAX_UPLOAD_COLUMNS is 1,000 by default)
_TYPES = ", ".join(t.value for t in FieldType)


@dataclass(frozen=True)
class UploadOptions:
    field_types: dict[str, FieldType] = field(default_factory=dict)  # header -> type
    column_map: dict[str, int | None] | None = None  # header -> field id, None: skip it
    key_fields: list[int] = field(default_factory=list)  # field ids

    def params(self) -> dict[str, Any]:
        """As kept in an import job's parameters (JSON)."""
        out: dict[str, Any] = {}
        if self.field_types:
            out["field_types"] = {h: t.value for h, t in self.field_types.items()}
        if self.column_map is not None:
            out["column_map"] = self.column_map
        if self.key_fields:
            out["key_fields"] = self.key_fields
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> UploadOptions:
        return cls(
            field_types={h: FieldType(t) for h, t in (params.get("field_types") or {}).items()},
            column_map=params.get("column_map"),
            key_fields=list(params.get("key_fields") or []),
        )


def _json(name: str, text: str | None) -> Any:
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRequest(
            f"`{name}` is not valid JSON: {exc}.", details=[{"field": name, "message": str(exc)}]
        ) from None


def _bad(name: str, message: str, **detail: Any) -> BadRequest:
    return BadRequest(
        f"`{name}` {message}.", details=[{"field": name, "message": message, **detail}]
    )


def _object(name: str, value: Any, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(name, f"must be a JSON object, such as {example}")
    if len(value) > MAX_OPTION_ENTRIES:
        raise _bad(name, f"has more than {MAX_OPTION_ENTRIES:,} entries")
    return value


def field_id(name: str, key: str, value: Any) -> int:
    """A field id given as a number or as a string of digits (the API's row keys)."""
    if isinstance(value, str) and (number := ascii_int(value.strip())) is not None:
        value = number
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise _bad(name, f"{key!r}: {value!r} is not a field id", column=key)
    return value


def parse_options(
    field_types: str | None, column_map: str | None = None, key_fields: str | None = None
) -> UploadOptions:
    """The form's option fields (JSON text, each optional), checked for shape: types must be
    field types, ids must be ids. Whether headers and ids exist is checked against the file and
    the item (`resolve_headers`, the append's planning)."""
    types: dict[str, FieldType] = {}
    raw_types = _json("field_types", field_types)
    if raw_types is not None:
        for header, value in _object("field_types", raw_types, '{"Zip": "char"}').items():
            try:
                types[header] = FieldType(value)
            except ValueError:
                raise _bad(
                    "field_types", f"{header!r}: {value!r} is not a field type ({_TYPES})",
                    column=header,
                ) from None  # fmt: skip
    mapping: dict[str, int | None] | None = None
    raw_map = _json("column_map", column_map)
    if raw_map is not None:
        mapping = {
            header: None if value is None else field_id("column_map", header, value)
            for header, value in _object(
                "column_map", raw_map, '{"Amount": 102, "Notes": null}'
            ).items()
        }
    keys: list[int] = []
    raw_keys = _json("key_fields", key_fields)
    if raw_keys is not None:
        keys = key_field_ids(raw_keys, "key_fields")
    return UploadOptions(types, mapping, keys)


def key_field_ids(value: Any, name: str = "key_fields") -> list[int]:
    """A non-empty list of distinct field ids."""
    if not isinstance(value, list) or not value:
        raise _bad(name, "must be a non-empty JSON array of field ids, such as [101]")
    if len(value) > 32:
        raise _bad(name, "names more than 32 fields")
    ids = [field_id(name, str(i), v) for i, v in enumerate(value)]
    if len(set(ids)) != len(ids):
        raise _bad(name, "names a field more than once")
    return ids


def resolve_headers(name: str, keys: Iterable[str], headers: Sequence[str]) -> dict[str, int]:
    """Each key of an option (a header as the user wrote it) -> the index of the file's column:
    the header written exactly, else the one header equal to it ignoring case and surrounding
    spaces (as an append matches headers to labels). A key naming no column, or two, is a 400."""
    exact: dict[str, int] = {}
    loose: dict[str, list[int]] = {}
    for i, header in enumerate(headers):
        exact.setdefault(header, i)
        loose.setdefault(header.strip().lower(), []).append(i)
    out: dict[str, int] = {}
    for key in keys:
        if key in exact:
            out[key] = exact[key]
            continue
        found = loose.get(key.strip().lower(), [])
        if len(found) != 1:
            columns = ", ".join(repr(h) for h in headers[:20]) + (
                ", …" if len(headers) > 20 else ""
            )
            what = "no column of the file" if not found else "more than one column"
            raise _bad(name, f"{key!r} names {what} (the file's columns: {columns})", column=key)
        out[key] = found[0]
    taken: dict[int, str] = {}
    for key, index in out.items():
        if index in taken:
            raise _bad(name, f"{taken[index]!r} and {key!r} name the same column", column=key)
        taken[index] = key
    return out
