"""Field types: the one registry every path uses to parse, store, query, aggregate, summarise
and export a cell. See base.py for what a kind owns, grammar.py for the value grammar, and
docs/architecture.md for adding a type."""

from app.fieldtypes.base import (
    Aggregation,
    CellError,
    DateGrouping,
    FieldType,
    FilterOp,
    Kind,
    Measure,
    Statistic,
    Stored,
)
from app.fieldtypes.registry import INFERENCE_ORDER, REGISTRY, kind_of

__all__ = [
    "INFERENCE_ORDER",
    "REGISTRY",
    "Aggregation",
    "CellError",
    "DateGrouping",
    "FieldType",
    "FilterOp",
    "Kind",
    "Measure",
    "Statistic",
    "Stored",
    "kind_of",
]
