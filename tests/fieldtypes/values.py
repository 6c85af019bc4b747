"""Cell values for the property tests: random text, and values built from the pieces the
inference rules are about (leading zeros, thousands separators, day/month orders, month names
with odd spacing, times with fractions and offsets, missing markers, boolean words, non-ASCII
digits, control characters and Unicode spaces, huge exponents), each alone and glued together.

`HYPOTHESIS_PROFILE=fuzz` (as `make fuzz` sets it) runs many more examples than the suite."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "suite",
    max_examples=int(os.environ.get("AGREEMENT_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("AGREEMENT_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

EDGES = [
    # numbers
    "0", "-0", "+3", "007", "02134", "-01", "00.5", "0.5", ".5", "5.", "-.25", "1e3", "1.5E-3",
    "1e200", "1e199", "0e99999999999999999999", "1e9223372036854775807", "-1e-30",
    "1,234,567.89", "1,23", "12,345", "01,234", "1.234", "1.234,56", "1234,56", "45200.50",
    "12345678901234567890.5", "inf", "NaN", "1_000", "\u0661\u0662", "\uff11\uff12", "\u0663",  # Arabic-Indic, fullwidth
    # booleans and missing markers
    "yes", "No", "TRUE", "t", "F", "y", "n", "1", "0", "NA", "n/a", "NULL", "nan", "#N/A", "-",
    "", " ", "\t", "\u00a0", "\u3000",
    # dates
    "2026-01-15", "2026-1-5", "2026/01/15", "2026.01.15", "2026-01/15", "2026-01-15T10:30",
    "2026-01-15 10:30:05.25+02:00", "2026-01-15t10:30z", "2026-01-15T10:30:00Z",
    "2026-01-15T24:00", "2026-01-15T10:30:00.1234567", "0001-01-01T00:30+01:00",
    "9999-12-31T23:30-01:00", "0999-03-04T10:00:00.250", "2026/01/15 10:00Z",
    "2026-01-15T10:00+23:59", "2026-01-15T10:00+01:75", "13/01/2026", "03/01/2026",
    "05/05/2026", "1/13/2026", "1.2.2026", "01-02-2026 10:30", "13/01/2026 10:30:00.5",
    "13/01-2026", "31/02/2026", "15/01/26", "Jan 5 2026", "Jan  5 2026", "Jan. 5, 2026",
    "January 5,  2026", "5 Jan 2026", "05-Jan-2026", "5 January, 2026", "5-Jan 2026",
    "Sept 5 2026", "Sep 31 2026", "Mayy 5 2026", "jAn 5 2026",
]  # fmt: skip
PIECES = [
    *EDGES, "12", "13", "31", "2026", "T", ":", "Z", "+", "e", "E", ",", ".", "/", "-", " ",
    "  ", "\x1f", "\x85", "\u2028", "\x01", "\r", "\n", "\x7f", "10:30", ".123456", "+02:00",
]  # fmt: skip


def cell_values() -> st.SearchStrategy[str]:
    """A cell's text (never NUL: a file with one is refused whole, tested on its own)."""
    pieces = st.lists(st.sampled_from(PIECES), min_size=1, max_size=5).map("".join)
    padded = st.tuples(
        st.sampled_from(["", " ", "\t", "\u00a0", "\x1f"]),
        st.sampled_from(EDGES),
        st.sampled_from(["", " ", "\u2003", "\x1c"]),
    ).map("".join)
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
    return st.one_of(st.sampled_from(EDGES), padded, pieces, text)
