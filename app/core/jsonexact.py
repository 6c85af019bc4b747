"""JSON out without floats: `Decimal` is written as its exact plain-notation number
(45200.50 -> 45200.5, 12345678901234567890 stays as is). FastAPI's default encoder would turn a
Decimal into a float or a string; neither is acceptable for people's numbers."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from decimal import Decimal, localcontext
from typing import Any

from fastapi.responses import JSONResponse

# What json.dumps(text, ensure_ascii=False) returns for a str (its C encoder), without the call
# overhead of json.dumps (an encoder object per value).
_string = json.encoder.encode_basestring


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("non-finite decimal")
    text = str(value)
    if "E" not in text:  # plain notation already (the usual case): drop trailing zeros
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if value.is_zero():
        return "0"
    if abs(value.adjusted()) > 1_000:  # (a value echoed in an error): plain text would be huge
        return str(value)  # exact, in exponent notation, which JSON allows: 1E+999999999
    with localcontext() as ctx:
        ctx.prec = max(len(value.as_tuple().digits), 28)  # normalize() must never round
        return format(value.normalize(), "f")


def _encode(value: Any, out: list[str]) -> None:
    # The common types by exact type first (a summary or a widget's data is thousands of values:
    # this is most of their CPU time), then the general rules, in their order, for the rest.
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif kind is dict:
        out.append("{")
        first = True
        for key, item in value.items():
            if first:
                first = False
            else:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif kind is list or kind is tuple:
        out.append("[")
        first = True
        for item in value:
            if first:
                first = False
            else:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif kind is Decimal:
        out.append(_decimal(value))
    elif kind is int:
        out.append(str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Decimal):
        out.append(_decimal(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        _encode(dict(value), out)
    elif isinstance(value, (list, tuple)):
        _encode(list(value), out)
    elif isinstance(value, dt.datetime):
        out.append(_string(value.isoformat(timespec="seconds")))
    elif isinstance(value, dt.date):
        out.append(_string(value.isoformat()))
    elif hasattr(value, "model_dump"):
        _encode(value.model_dump(mode="python"), out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# A decimal is handed to the C encoder as a string holding this marker and its index, then the
# marker (quoted, with its NUL escaped) is replaced by the number's exact text. No other string
# can hold it: text with NUL is refused on input (and PostgreSQL cannot store it), and the nonce
# is this process's own.
_NONCE = secrets.token_hex(8)
_MARK = re.compile(r'"\\u0000' + _NONCE + r'(\d+)\\u0000"')


def dumps(value: Any) -> str:
    """`value` as compact JSON, decimals exact. The C encoder does the work (a summary or a
    widget's data is hundreds of values: a Python encoder was most of their CPU time); values
    it does not know come through `default`, and anything it refuses (a key that is neither text
    nor an integer) is encoded by `_encode`, the rules in Python. Keys are text or integers in
    every document here (a bool or None key would be written as a JSON literal by the first)."""
    numbers: list[str] = []

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            numbers.append(_decimal(item))
            return f"\x00{_NONCE}{len(numbers) - 1}\x00"
        if isinstance(item, dt.datetime):
            return item.isoformat(timespec="seconds")
        if isinstance(item, dt.date):
            return item.isoformat()
        if hasattr(item, "model_dump"):
            return item.model_dump(mode="python")
        raise TypeError(f"cannot encode {type(item).__name__} as JSON")

    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)
    except TypeError:
        out: list[str] = []
        _encode(value, out)
        return "".join(out)
    if numbers:
        text = _MARK.sub(lambda m: numbers[int(m.group(1))], text)
    return text


class ExactJSONResponse(JSONResponse):
    """A JSONResponse (so OpenAPI shows the route's `response_model`), rendered exactly."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode("utf-8")
        return dumps(content).encode("utf-8")
