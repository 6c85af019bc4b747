"""JSON out without floats: `Decimal` is written as its exact plain-notation number
(45200.50 -> 45200.5, 12345678901234567890 stays as is). FastAPI's default encoder would turn a
Decimal into a float or a string; neither is acceptable for people's numbers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, localcontext
from typing import Any

from fastapi.responses import JSONResponse


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("non-finite decimal")
    if value.is_zero():
        return "0"
    if abs(value.adjusted()) > 1_000:  # (a value echoed in an error): plain text would be huge
        return str(value)  # exact, in exponent notation, which JSON allows: 1E+999999999
    with localcontext() as ctx:
        ctx.prec = max(len(value.as_tuple().digits), 28)  # normalize() must never round
        return format(value.normalize(), "f")


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(_decimal(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dt.datetime):
        out.append(json.dumps(value.isoformat(timespec="seconds")))
    elif isinstance(value, dt.date):
        out.append(json.dumps(value.isoformat()))
    elif hasattr(value, "model_dump"):
        _encode(value.model_dump(mode="python"), out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


class ExactJSONResponse(JSONResponse):
    """A JSONResponse (so OpenAPI shows the route's `response_model`), rendered exactly."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode("utf-8")
        return dumps(content).encode("utf-8")
