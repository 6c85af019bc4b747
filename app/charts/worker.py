"""The chart renderer's child process (run as a script by app/charts/renderer.py, importing
nothing of the app): reads requests from stdin, renders them with vl-convert, answers on stdout.

A request is a 12-byte header, the format (`svg `, `png `, `pdf `; for a dashboard `dsvg`, `dpng`,
`dpdf`) and the length of what follows (big-endian unsigned 64-bit), then the spec (a dashboard:
its composition, see `compose`) as UTF-8 JSON. An answer is the same header with `ok  ` or
`err ` and the length of what follows: the image, or the error's text. The process ends at the
end of its input (the service closed the pipe, or went away)."""

from __future__ import annotations

import json
import struct
import sys
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

HEADER = struct.Struct(">4sQ")


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def compose(board: dict[str, Any]) -> str:
    """One SVG of a dashboard: its background and title, and each chart's own SVG (drawn at
    its cell's size) placed at its cell's top-left corner, as the layout's grid says."""
    import vl_convert

    width, height = board["width"], board["height"]
    font = "Liberation Sans, Arial, sans-serif"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="{escape(board["background"])}"/>',
    ]
    for text in board["texts"]:
        parts.append(
            f'<text x="{text["x"]}" y="{text["y"]}" font-family="{font}" '
            f'font-size="{text["size"]}" font-weight="{text["weight"]}" '
            f'fill="{escape(text["color"])}">{escape(text["text"])}</text>'
        )
    for cell in board["cells"]:
        svg = vl_convert.vegalite_to_svg(cell["spec"], allowed_base_urls=[])
        if not svg.startswith("<svg "):
            raise ValueError("a chart's SVG does not start with <svg")
        parts.append(f'<svg x="{cell["x"]}" y="{cell["y"]}" ' + svg[len("<svg ") :])
    parts.append("</svg>")
    return "".join(parts)


def render(fmt: bytes, spec: str) -> bytes:
    import vl_convert

    if fmt.startswith(b"d"):  # a dashboard: its charts composed into one picture
        board = compose(json.loads(spec))
        if fmt == b"dsvg":
            return board.encode()
        if fmt == b"dpng":
            return vl_convert.svg_to_png(board, scale=1.0)
        if fmt == b"dpdf":
            return vl_convert.svg_to_pdf(board)
    # No URL may be fetched: the data is inline, and a spec never reaches the network.
    if fmt == b"svg ":
        return vl_convert.vegalite_to_svg(spec, allowed_base_urls=[]).encode()
    if fmt == b"png ":
        return vl_convert.vegalite_to_png(spec, scale=1.0, allowed_base_urls=[])
    if fmt == b"pdf ":
        return vl_convert.vegalite_to_pdf(spec, allowed_base_urls=[])
    raise ValueError(f"unknown format {fmt!r}")


def main() -> None:  # pragma: no cover - runs in the child process (covered by the chart tests)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (header := _read(stdin, HEADER.size)) is not None:
        fmt, size = HEADER.unpack(header)
        spec = _read(stdin, size)
        if spec is None:
            return
        try:
            status, answer = b"ok  ", render(fmt, spec.decode())
        except Exception as exc:
            status, answer = b"err ", (str(exc).strip() or type(exc).__name__)[:2000].encode()
        stdout.write(HEADER.pack(status, len(answer)))
        stdout.write(answer)
        stdout.flush()


if __name__ == "__main__":
    main()
