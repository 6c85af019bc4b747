"""The registry: one kind per field type. Every path that parses, stores, queries, aggregates
or exports a cell asks it for the field's kind (`kind_of(field.field_type)`)."""

from __future__ import annotations

from app.fieldtypes.base import FieldType, Kind
from app.fieldtypes.boolean import BooleanKind
from app.fieldtypes.date import DateKind
from app.fieldtypes.decimal import DecimalKind
from app.fieldtypes.text import CharKind, TextKind

REGISTRY: dict[FieldType, Kind] = {
    kind.name: kind for kind in (CharKind(), TextKind(), DecimalKind(), DateKind(), BooleanKind())
}
_BY_NAME: dict[str, Kind] = {name.value: kind for name, kind in REGISTRY.items()}
# inference's precedence: the first type that fits every value of a column wins
INFERENCE_ORDER = (FieldType.DECIMAL, FieldType.BOOLEAN, FieldType.DATE)


def kind_of(field_type: FieldType | str) -> Kind:
    """The kind of a field type (a 'decimal' string or FieldType.DECIMAL alike)."""
    found = _BY_NAME.get(field_type)  # a StrEnum member hashes like its value
    return found if found is not None else REGISTRY[FieldType(field_type)]
