"""Field types: the one registry every path (rows, ingestion, conversion, summary, search) uses."""

from __future__ import annotations

from enum import StrEnum


class FieldType(StrEnum):
    CHAR = "char"
    TEXT = "text"
    DECIMAL = "decimal"
    DATE = "date"
    BOOLEAN = "boolean"
