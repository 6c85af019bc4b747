"""The chart renderer's child process (run as a script by app/charts/renderer.py, importing
nothing of the app): reads requests from stdin, renders them with vl-convert, answers on stdout.

A request is a 12-byte header, the format (`svg `, `png `, `pdf `) and the spec's length (big-endian
unsigned 64-bit), then the spec as UTF-8 JSON. An answer is the same header with `ok  ` or
`err ` and the length of what follows: the image, or the error's text. The process ends at the
end of its input (the service closed the pipe, or went away)."""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

HEADER = struct.Struct(">4sQ")


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def render(fmt: bytes, spec: str) -> bytes:
    import vl_convert

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
