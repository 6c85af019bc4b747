"""The bodies an upload answers, built from the service's outcome: one definition for the
synchronous endpoints and for import jobs (whose `result` is the same body)."""

from __future__ import annotations

from app.ingestion.schemas import (
    AppendFromFileResult,
    CreateFromFileResult,
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
        matched_columns=outcome.matched,
        skipped_columns=outcome.skipped,
        reference_file=ReferenceFileBrief.model_validate(outcome.reference),
        notes=outcome.notes,
    )
