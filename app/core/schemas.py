"""Base schemas shared by every domain: input hygiene, timestamps, the error body."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)


def text_problem(value: str) -> str | None:
    """Why PostgreSQL would refuse this text (NUL, lone UTF-16 surrogates), or None if it is fine."""
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain unpaired UTF-16 surrogates"
    return None


def stripped_not_blank(value: str | None) -> str | None:
    """A name or label validator: surrounding spaces are dropped, and nothing may remain blank."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def timestamp_text(value: datetime) -> str:
    """How a `Timestamp` is written: UTC, to the second (`2026-02-15T10:30:00+00:00`)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


Timestamp = Annotated[
    datetime,
    PlainSerializer(timestamp_text, return_type=str),
    Field(examples=["2026-02-15T10:30:00+00:00"]),
]


class Schema(BaseModel):
    """Base for responses: built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


@functools.cache
def _scalar_kinds(annotation: Any) -> frozenset[type]:
    """bool and int among the types a field accepts, seen through Optional, unions and
    Annotated (only fields of exactly those types: not `Any`, not `str | int`)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        kinds = [_scalar_kinds(a) for a in members]
        return kinds[0] if len(kinds) == 1 else frozenset()
    return frozenset({annotation}) if annotation in (bool, int) else frozenset()


class InputSchema(BaseModel):
    """Base for request bodies: unknown keys are refused, text PostgreSQL cannot store is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        """FastAPI validates bodies with attribute lookup allowed, so a JSON number with a
        fraction (parsed as a Decimal, an object with attributes) passed as an empty object: a
        PATCH with the body `1.5` answered 200. Refused like any other non-object."""
        if isinstance(data, Decimal):
            raise ValueError("Input should be a valid dictionary or object to extract fields from")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        """A boolean field takes JSON true/false, an integer field a JSON number: pydantic's lax
        mode would also take "0", "yes" or 1 for a boolean and "5" or true for an integer, which
        the OpenAPI types (and the fuzzer's schema-violating requests) say are refused."""
        if value is None or info.field_name is None:
            return value
        kinds = _scalar_kinds(cast(Any, cls.model_fields[info.field_name].annotation))
        if bool in kinds and not isinstance(value, bool):
            raise ValueError("Input should be a valid boolean (true or false)")
        if int in kinds and (isinstance(value, (str, bool))):
            raise ValueError("Input should be a valid integer")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ValueError(problem)
        return value


def optional_not_null(
    *names: str, examples: list[Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` for update bodies whose fields may be left out but not sent as null
    (the validators refuse null): OpenAPI then shows each as its type alone, so generated and
    hand-written clients do not send a null the service refuses."""

    def patch(schema: dict[str, Any]) -> None:
        properties = schema.get("properties", {})
        for name in names:
            prop = properties[name]
            variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
            if len(variants) == 1:
                prop.update(variants[0])
            elif variants:
                prop["anyOf"] = variants
            if prop.get("default", ...) is None:
                del prop["default"]
        if examples is not None:
            schema["examples"] = examples

    return patch


class ErrorDetail(BaseModel):
    """One problem: which input (`field`, or `row`/`column`/`value` for data) and what is wrong."""

    model_config = ConfigDict(extra="allow")

    message: str


class ErrorBody(BaseModel):
    error: str = Field(examples=["Invalid or missing API key."])
    code: str = Field(examples=["UNAUTHORIZED"])
    details: list[ErrorDetail] | None = None
    request_id: str | None = Field(default=None, examples=["5f0c1b2e9a7d4c33"])


class DeletedResult(Schema):
    deleted: bool = Field(examples=[True])
