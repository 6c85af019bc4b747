"""Request and response bodies for fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, field_validator

from app.core.schemas import InputSchema, Schema, optional_not_null, stripped_not_blank
from app.fieldtypes import FieldType

Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        examples=["Revenue"],
        description="Unique within the item, ignoring case and surrounding spaces; 1-255 characters.",
    ),
]
Instructions = Annotated[str, Field(max_length=10_000, examples=[""])]
Order = Annotated[
    int,
    Field(
        ge=0,
        le=1_000_000,
        description="0-based position; other fields shift to make room. Past the end means last.",
    ),
]


class FieldCreate(InputSchema):
    field_label: Label
    field_type: FieldType = FieldType.CHAR
    field_order: Order | None = Field(default=None, description="Default: after the last field.")
    field_required: bool = False
    field_instructions: Instructions = ""

    _label = field_validator("field_label")(stripped_not_blank)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"field_label": "Discount %", "field_type": "decimal"}]}
    )


class FieldUpdate(InputSchema):
    field_label: Label | None = None
    field_type: FieldType | None = Field(
        default=None,
        description="Converting stored values; if any cannot convert, nothing changes (400).",
    )
    field_order: Order | None = None
    field_required: bool | None = None
    field_instructions: Instructions | None = None

    _label = field_validator("field_label")(stripped_not_blank)

    @field_validator(
        "field_label",
        "field_type",
        "field_order",
        "field_required",
        "field_instructions",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null")
        return value

    model_config = ConfigDict(
        json_schema_extra=optional_not_null(
            "field_label",
            "field_type",
            "field_order",
            "field_required",
            "field_instructions",
            examples=[{"field_type": "decimal"}],
        )
    )


class FieldRead(Schema):
    id: int = Field(examples=[104])
    field_label: str = Field(examples=["Discount %"])
    field_type: FieldType = Field(examples=["decimal"])
    field_order: int = Field(examples=[3])
    field_required: bool = Field(examples=[False])
    field_instructions: str = Field(examples=[""])


class FieldList(Schema):
    fields: list[FieldRead]
