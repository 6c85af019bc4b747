"""The share page's HTML: the dashboard's title and description, and each widget's chart as
inline SVG in a CSS grid laid out as the dashboard's 12-column grid. Self-contained (its own
small stylesheet, no script, no font, no image or anything else to fetch), so it works offline and
under a `default-src 'none'` policy. Every text a user wrote (titles, the description) is escaped
here; the charts' SVG is the renderer's own output (vl-convert escapes the labels it draws)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

ROW_PX = 80  # a grid row at the full width (as in the dashboard's picture, app/charts/board.py)

# Every answer of /s/…: not stored by browsers or proxies (the link may be revoked at any time),
# nothing loaded from anywhere, no referrer sent on (the URL holds the token), not indexed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}

_STYLE = f"""
*{{box-sizing:border-box}}
body{{margin:0;background:#eef0f3;color:#111;font:15px/1.4 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}}
main{{max-width:1200px;margin:0 auto;padding:16px}}
h1{{font-size:24px;margin:0 0 4px}}
.description{{color:#555;margin:0 0 12px;white-space:pre-line}}
.grid{{display:grid;grid-template-columns:repeat(12,minmax(0,1fr));grid-auto-rows:{ROW_PX - 12}px;
gap:12px}}
.cell{{margin:0;background:#fff;border-radius:4px;overflow:hidden;min-width:0}}
.cell>svg{{display:block;width:100%;height:100%}}
.missing{{display:flex;align-items:center;justify-content:center;padding:12px;color:#555;
text-align:center}}
.empty{{color:#555}}
footer{{color:#777;font-size:12px;margin-top:16px}}
@media (max-width:720px){{
.grid{{grid-template-columns:minmax(0,1fr);grid-auto-rows:auto}}
.cell{{grid-column:1/-1!important;grid-row:auto!important}}
.cell>svg{{height:auto}}
.missing{{min-height:120px}}
}}
"""


@dataclass(frozen=True)
class Cell:
    title: str
    x: int
    y: int
    w: int
    h: int
    svg: str | None  # None: the chart could not be drawn just now


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def _cell(cell: Cell) -> str:
    place = f"grid-column:{cell.x + 1} / span {cell.w};grid-row:{cell.y + 1} / span {cell.h}"
    label = escape(cell.title)
    if cell.svg is None:
        inner = f"<p>{label}: this chart could not be drawn just now; reload the page later.</p>"
        return f'<figure class="cell missing" style="{place}">{inner}</figure>\n'
    return f'<figure class="cell" style="{place}" aria-label="{label}">{cell.svg}</figure>\n'


def dashboard_page(title: str, description: str, cells: Sequence[Cell], at: datetime) -> str:
    parts = [f"<header>\n<h1>{escape(title)}</h1>\n"]
    if description:
        parts.append(f'<p class="description">{escape(description)}</p>\n')
    parts.append("</header>\n")
    if cells:
        parts.append('<div class="grid">\n')
        parts.extend(_cell(c) for c in cells)
        parts.append("</div>\n")
    else:
        parts.append('<p class="empty">No widgets on this dashboard yet.</p>\n')
    when = at.strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer>A read-only view of a shared dashboard, drawn {when}.</footer>\n")
    return _document(title, "".join(parts))


def not_found_page() -> str:
    return _document(
        "Link not found",
        "<h1>Link not found</h1>\n<p>This link does not work: it may have been revoked or have "
        "expired, or it was not copied whole. Ask whoever shared it for a new one.</p>\n",
    )
