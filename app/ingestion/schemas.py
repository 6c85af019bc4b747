"""Upload result bodies."""

from __future__ import annotations

from typing import Any

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
    rows_appended: int = Field(examples=[500], description="Rows added (inserted).")
    cells_created: int = Field(examples=[1500])
    rows_inserted: int = Field(
        default=0, examples=[500], description="The same as rows_appended (upserts count both)."
    )
    rows_updated: int = Field(
        default=0, examples=[0], description="Existing rows updated (key_fields: an upsert)."
    )
    cells_updated: int = Field(
        default=0, examples=[0], description="Cells of updated rows given a different value."
    )
    matched_columns: list[str] = Field(examples=[["Region", "Revenue", "Close Date"]])
    skipped_columns: list[str] = Field(examples=[[]])
    reference_file: ReferenceFileBrief
    notes: list[str] = NOTES


class PreviewField(Schema):
    field_label: str = Field(examples=["Zip"])
    field_type: FieldType = Field(examples=["char"])
    field_order: int = Field(examples=[2], description="The column's position in the file.")
    column: str = Field(examples=["Zip"], description="The file's header for it.")
    reasons: str = Field(
        examples=["leading zeros (e.g. '02134') keep it text"],
        description="Why it has this type (`set by field_types` when the form set it).",
    )
    new: bool = Field(
        examples=[True], description="A field the upload would create (always, for a new item)."
    )


PROBLEMS: list[dict[str, Any]] = Field(
    default_factory=list,
    description=(
        "Values that would fail the upload (row as in the file, column, value, message): the "
        "first 20. Empty when the real call would succeed."
    ),
    examples=[[{"row": 5, "column": "Zip", "value": "n/a", "message": "is not a valid decimal"}]],
)


class CreatePreview(Schema):
    """What `create-from-file` would do with the file (`dry_run=true`); nothing is written."""

    dry_run: bool = Field(default=True, examples=[True])
    fields: list[PreviewField]
    rows: int = Field(examples=[1250], description="Rows the item would have.")
    sample: list[dict[str, Any]] = Field(
        description=(
            "The first 20 rows as the API would return them, keyed by field label (the fields "
            "have no ids yet); a value that would not fit is shown as the file's text."
        ),
        examples=[[{"Region": "North", "Revenue": 45200.5, "Zip": "02134"}]],
    )
    problems: list[dict[str, Any]] = PROBLEMS
    problem_count: int = Field(default=0, examples=[0])
    notes: list[str] = NOTES


class AppendPreview(Schema):
    """What `append-from-file` would do with the file (`dry_run=true`); nothing is written."""

    dry_run: bool = Field(default=True, examples=[True])
    fields: list[PreviewField] = Field(description="Where each loaded column would go.")
    matched_columns: list[str] = Field(examples=[["Region", "Revenue"]])
    skipped_columns: list[str] = Field(examples=[["Notes"]])
    new_columns: list[str] = Field(
        examples=[["Zip"]], description="Columns that would get a new field (add_new_fields)."
    )
    rows: int = Field(examples=[500], description="Rows the append would add.")
    problems: list[dict[str, Any]] = PROBLEMS
    problem_count: int = Field(default=0, examples=[0])
    notes: list[str] = NOTES
    rows_updated: int | None = Field(
        default=None,
        examples=[380],
        description="With key_fields: the existing rows the upsert would update.",
    )
    rows_inserted: int | None = Field(
        default=None, examples=[120], description="With key_fields: the rows it would add."
    )
