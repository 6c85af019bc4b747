"""The registry's SQL vocabulary: one field's cell in a row document, as SQLAlchemy Core
expressions over the `rows` table (`"values"->'101'`, its text, whether the key is there).

Expressions only: the kinds compose them into casts, sort keys, conditions and aggregates, and
repositories put those into statements (scoped to their item). A field id is bound as a string
parameter, never written into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Text, bindparam, collate, func, literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute

from app.models import rows_table

VALUES = rows_table.c["values"]


@dataclass(frozen=True)
class Cell:
    """A field's cell in each row (`"values"->key`); NULL where the row has no value."""

    field_id: int

    def _key(self) -> ColumnElement[str]:
        return bindparam(None, str(int(self.field_id)), type_=Text)

    @property
    def json(self) -> ColumnElement[object]:
        """The stored JSON value (`"values"->key`)."""
        return VALUES.op("->", return_type=JSONB)(self._key())

    @property
    def text(self) -> ColumnElement[str]:
        """The stored value as text, as shown (`"values"->>key`): `45200.5`, `true`, `2026-01-15`."""
        return VALUES.op("->>", return_type=Text)(self._key())

    @property
    def present(self) -> ColumnElement[bool]:
        """The row has a key for the field (`"values" ? key`)."""
        return VALUES.op("?", return_type=Boolean)(self._key())

    def json_type(self) -> ColumnElement[str]:
        return func.jsonb_typeof(self.json)

    def is_json(self, kind: str) -> ColumnElement[bool]:
        """`jsonb_typeof(cell) = 'number'` and the like."""
        return self.json_type() == literal(kind, Text)


def by_code_point(expr: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[str]:
    """Text compared by code point (`COLLATE "C"`): ISO dates sort chronologically, and the
    order does not depend on the database's collation."""
    return collate(expr, "C")


def like_pattern(term: str) -> str:
    """%term% with LIKE's own special characters taken literally (backslash is the escape)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
