"""The bodies an upload answers, built from the service's outcome: one definition for the
synchronous endpoints and for import jobs (whose `result` is the same body)."""

from __future__ import annotations

from app.fieldtypes import FieldType
from app.ingestion import service
from app.ingestion.schemas import (
    AppendFromFileResult,
    AppendPreview,
    CreateFromFileResult,
    CreatePreview,
    PreviewField,
    ReferenceFileBrief,
    UploadedField,
)
from app.ingestion.service import AppendOutcome, CreateOutcome


def create_result(outcome: CreateOutcome) -> CreateFromFileResult:
    return CreateFromFileResult(
        id=outcome.item.id,
        data_name=outcome.item.data_name,
        data_description=outcome.item.data_description,
        fields=[UploadedField.model_validate(f) for f in outcome.fields],
        rows_created=outcome.rows,
        cells_created=outcome.cells,
        reference_file=ReferenceFileBrief.model_validate(outcome.reference),
        notes=outcome.notes,
    )


def append_result(outcome: AppendOutcome) -> AppendFromFileResult:
    return AppendFromFileResult(
        id=outcome.item.id,
        data_name=outcome.item.data_name,
        rows_appended=outcome.rows,
        cells_created=outcome.cells,
        rows_inserted=outcome.counts.rows_inserted,
        rows_updated=outcome.counts.rows_updated,
        cells_updated=outcome.counts.cells_updated,
        matched_columns=outcome.matched,
        skipped_columns=outcome.skipped,
        reference_file=ReferenceFileBrief.model_validate(outcome.reference),
        notes=outcome.notes,
    )


def _fields(fields: list[service.PreviewField]) -> list[PreviewField]:
    return [
        PreviewField(
            field_label=f.field_label,
            field_type=FieldType(f.field_type),
            field_order=f.field_order,
            column=f.column,
            reasons=f.reasons,
            new=f.new,
        )
        for f in fields
    ]


def create_preview(preview: service.CreatePreview) -> CreatePreview:
    return CreatePreview(
        fields=_fields(preview.fields),
        rows=preview.rows,
        sample=preview.sample,
        problems=preview.problems,
        problem_count=preview.problem_count,
        notes=preview.notes,
    )


def append_preview(preview: service.AppendPreview) -> AppendPreview:
    return AppendPreview(
        fields=_fields(preview.fields),
        matched_columns=preview.matched,
        skipped_columns=preview.skipped,
        new_columns=preview.new,
        rows=preview.rows,
        problems=preview.problems,
        problem_count=preview.problem_count,
        notes=preview.notes,
        rows_updated=preview.rows_updated,
        rows_inserted=preview.rows_inserted,
    )
