"""Numbers written by clients (ids, refs, sort keys, sheet indexes, header values) are ASCII
digits only.

`str.isdigit()` is also true for "²" or "①", which `int()` refuses (a ValueError, so a 500),
and `int()` and `re`'s `\\d` accept every Unicode decimal digit: `int("٣")` is 3, so an id
written in Arabic-Indic or fullwidth digits would silently name another row or field. Text
that must be a number goes through here; patterns use `[0-9]` or `re.ASCII`.
"""

from __future__ import annotations


def is_ascii_digits(text: str) -> bool:
    """`text` is one or more of 0-9 and nothing else."""
    return text.isascii() and text.isdigit()


def ascii_int(text: str, max_digits: int = 18) -> int | None:
    """`text` as a non-negative int if it is 1 to `max_digits` ASCII digits; None otherwise."""
    if len(text) <= max_digits and is_ascii_digits(text):
        return int(text)
    return None
