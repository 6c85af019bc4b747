"""Upload result bodies."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import Schema
from app.fieldtypes import FieldType


class UploadedField(Schema):
    id: int = Field(examples=[101])
    field_label: str = Field(examples=["Region"])
    field_type: FieldType = Field(examples=["char"])
    field_order: int = Field(examples=[0])


class ReferenceFileBrief(Schema):
    id: int = Field(examples=[7])
    filename: str = Field(examples=["sales.csv"])


NOTES: list[str] = Field(
    default_factory=list,
    description=(
        "What was done to the file that you may want to know: generated or renamed headers, "
        "skipped blank rows, padded short rows, the encoding, delimiter or sheet used, why a "
        "column was typed as it was."
    ),
    examples=[["encoding: UTF-8 (with BOM)", "column 4 had no header: named it 'Column 4'"]],
)


class CreateFromFileResult(Schema):
    id: int = Field(examples=[42])
    data_name: str = Field(examples=["Q1 Sales Report"])
    data_description: str = Field(examples=["Quarterly sales by region"])
    fields: list[UploadedField]
    rows_created: int = Field(examples=[1250])
    cells_created: int = Field(examples=[3750], description="Non-empty cells written.")
    reference_file: ReferenceFileBrief
    notes: list[str] = NOTES


class AppendFromFileResult(Schema):
    id: int = Field(examples=[42])
    data_name: str = Field(examples=["Q1 Sales Report"])
    rows_appended: int = Field(examples=[500])
    cells_created: int = Field(examples=[1500])
    matched_columns: list[str] = Field(examples=[["Region", "Revenue", "Close Date"]])
    skipped_columns: list[str] = Field(examples=[[]])
    reference_file: ReferenceFileBrief
    notes: list[str] = NOTES
