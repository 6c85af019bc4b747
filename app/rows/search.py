"""Substring search over every cell's text as it is shown, case-insensitively.

Two conditions, so it is both fast and exact:
- a coarse one on `SEARCH_TEXT` (the JSON array of the row's values, keys left out), which the
  per-item trigram index serves: the search text JSON-escaped the way PostgreSQL writes jsonb,
  inside an ILIKE pattern;
- an exact one per cell (`jsonb_each_text`), needed only when a coarse match could be false: the
  term contains JSON syntax (`"`, `,`, `[`, `]`, `\\`) or control characters, or the row's text
  has an escape ending in letters that the term could match (`\\n` and "n"; escaped quotes and
  backslashes cannot, since such a term has neither).
`%` and `_` in the search text are literal. Case folding follows the database's LC_CTYPE (a UTF-8
locale such as C.UTF-8 folds É/é and Cyrillic).
"""

from __future__ import annotations

import re

from sqlalchemy import TextClause, text

from app.fieldtypes.sql import like_pattern

MAX_SEARCH_CHARS = 1_000
# The text of every cell value of a row, without keys (so "10" does not match key "101"):
# the expression the per-item trigram index is built on (app/rows/maintenance.py).
SEARCH_TEXT = """jsonb_path_query_array("values", '$.*'::jsonpath)::text"""
_JSON_SYNTAX = set('"\\,[]')


def pg_json_escape(term: str) -> str:
    """How PostgreSQL's jsonb output escapes a string's characters (escape_json)."""
    out = []
    for ch in term:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


_CONTROL = re.compile(r"[\x00-\x1f]")


def has_control_chars(text: str) -> bool:
    return _CONTROL.search(text) is not None


def needs_exact_check(term: str) -> bool:
    return any(ch in _JSON_SYNTAX or ord(ch) < 0x20 for ch in term)


def search_clause(term: str, *, indexable: bool = True, escapes: bool = True) -> TextClause:
    """The condition (to AND into a rows query), its values bound. `indexable=False` gives the
    same condition in a form the trigram index does not match, for the ordered scan that answers
    a first page quickly when matches are dense. `escapes=False`: no cell of the item ever held a
    control character, so a plain term needs no per-cell check at all."""
    coarse = SEARCH_TEXT if indexable else f"({SEARCH_TEXT} || '')"
    exact = (
        'EXISTS (SELECT 1 FROM jsonb_each_text("values") AS cell '
        "WHERE cell.value ILIKE :search_exact)"
    )
    if needs_exact_check(term):
        sql = f"{coarse} ILIKE :search_coarse AND {exact}"
    elif not escapes:
        sql = f"{coarse} ILIKE :search_coarse"
    else:
        sql = f"{coarse} ILIKE :search_coarse AND ({SEARCH_TEXT} !~ '\\\\[bfnrtu]' OR {exact})"
    clause = text(f"({sql})")
    values = {"search_coarse": like_pattern(pg_json_escape(term))}
    if ":search_exact" in sql:
        values["search_exact"] = like_pattern(term)
    return clause.bindparams(**values)
