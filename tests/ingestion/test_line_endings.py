"""CSV line endings: LF, CRLF, classic Mac CR and mixes all end records; a quoted field keeps
whichever it holds; the notes say which the file used (read_table and the HTTP stack)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.ingestion.csv_text import CHUNK_BYTES, MAX_LINE_BYTES, TextSource
from app.ingestion.readers import FileFormatError, FileLimitError, RawTable, read_table
from tests.conftest import Caller
from tests.helpers import assert_error

HEADER = b"id,note,amount"
# quoted cells holding each kind of line break, then a plain one
RECORDS = [b'1,"a\rb",1.5', b'2,"c\nd",2', b'3,"e\r\nf",3', b"4,plain,4"]
EXPECTED = [("1", "a\rb", "1.5"), ("2", "c\nd", "2"), ("3", "e\r\nf", "3"), ("4", "plain", "4")]


def joined(endings: list[bytes]) -> bytes:
    """HEADER and RECORDS, record i ended by endings[i % len(endings)]."""
    lines = [HEADER, *RECORDS]
    return b"".join(line + endings[i % len(endings)] for i, line in enumerate(lines))


def read(tmp_path: Path, data: bytes, name: str = "f.csv") -> RawTable:
    path = tmp_path / name
    path.write_bytes(data)
    return read_table(path, name)


@pytest.mark.parametrize(
    ("endings", "note"),
    [
        ([b"\r"], "Line endings: CR (classic Mac)."),
        ([b"\n"], "Line endings: LF (Unix)."),
        ([b"\r\n"], "Line endings: CRLF (Windows)."),
        ([b"\r\n", b"\n"], "Line endings: mixed: CRLF and LF."),
        ([b"\r", b"\r\n"], "Line endings: mixed: CRLF and CR."),
        ([b"\n", b"\r", b"\r\n"], "Line endings: mixed: CRLF, LF and CR."),
    ],
)
def test_every_line_ending_reads_and_quoted_ones_are_kept(
    tmp_path: Path, endings: list[bytes], note: str
) -> None:
    table = read(tmp_path, joined(endings))
    assert table.labels == ["id", "note", "amount"]
    assert table.frame.rows() == EXPECTED
    assert table.row_numbers.to_list() == [2, 3, 4, 5]
    assert table.notes == ["Encoding: UTF-8.", note, "Delimiter: comma (',')."]


def test_classic_mac_without_a_final_line_break(tmp_path: Path) -> None:
    table = read(tmp_path, b"a;b\r1;x\r2;y")
    assert table.frame.rows() == [("1", "x"), ("2", "y")]
    assert table.delimiter == ";"
    assert "Line endings: CR (classic Mac)." in table.notes


def test_classic_mac_blank_lines_are_blank_rows(tmp_path: Path) -> None:
    table = read(tmp_path, b"\r\ra,b\r1,2\r\r3,4\r")
    assert table.frame.rows() == [("1", "2"), ("3", "4")]
    assert table.row_numbers.to_list() == [4, 6]
    assert "Skipped 2 blank lines before the header." in table.notes
    assert "Skipped 1 blank row (first: row 5)." in table.notes


def test_a_quoted_cr_in_an_lf_file_stays_in_its_cell(tmp_path: Path) -> None:
    table = read(tmp_path, b'a,b\n1,"x\ry"\n2,"p\rq\r"\n')
    assert table.frame.rows() == [("1", "x\ry"), ("2", "p\rq\r")]
    assert "Line endings: LF (Unix)." in table.notes


@pytest.mark.parametrize(
    ("data", "copied"),
    [
        (b'a,b\n1,"x\ry"\n2,"p\rq\r"\n', False),  # lone CRs only inside quotes: read in place
        (b"a,b\r\n1,2\r\n", False),
        (b'a,b\n1,"x\ry"\n2,z\r3,w\n', True),  # one lone CR outside quotes: a copy
    ],
)
def test_only_a_lone_cr_outside_quotes_makes_a_copy(
    tmp_path: Path, data: bytes, copied: bool
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    source = TextSource(path)
    try:
        source.prepare()
        assert (source.temp is not None) == copied
    finally:
        source.close()


def test_records_ending_in_lf_with_crlf_inside_quotes_are_lf(tmp_path: Path) -> None:
    table = read(tmp_path, b'a,b\n1,"x\r\ny"\n2,z\n')
    assert table.frame.rows() == [("1", "x\r\ny"), ("2", "z")]
    assert "Line endings: LF (Unix)." in table.notes


@pytest.mark.parametrize(
    ("encoding", "bom", "note"),
    [
        ("utf-16-le", b"\xff\xfe", "Encoding: UTF-16 LE."),
        ("cp1252", b"", "Encoding: Windows-1252 (the file is not UTF-8)."),
    ],
)
def test_transcoded_classic_mac_files(tmp_path: Path, encoding: str, bom: bytes, note: str) -> None:
    text = 'Année;Prix\r2025;"12,50\r€"\r2026;3\r'
    table = read(tmp_path, bom + text.encode(encoding))
    assert table.labels == ["Année", "Prix"]
    assert table.frame.rows() == [("2025", "12,50\r€"), ("2026", "3")]
    assert table.notes[:3] == [
        note,
        "Line endings: CR (classic Mac).",
        "Delimiter: semicolon (';').",
    ]


def test_a_big_classic_mac_file_streams_across_chunks(tmp_path: Path) -> None:
    """More than two 4 MiB chunks, quoted cells holding CR, CRLF and LF at every chunk edge."""
    rows = 400_000
    body = b"".join(b'%d,"x\r%d\r\ny\nz",%d\r' % (i, i, i) for i in range(rows))
    assert len(body) > 2 * CHUNK_BYTES
    table = read(tmp_path, b"n,text,again\r" + body)
    assert table.frame.height == rows
    assert table.frame.row(0) == ("0", "x\r0\r\ny\nz", "0")
    assert table.frame.row(-1) == (str(rows - 1), f"x\r{rows - 1}\r\ny\nz", str(rows - 1))
    assert bool((table.frame["c1"].str.count_matches("\r\n") == 1).all())
    assert table.row_numbers[-1] == rows + 1
    assert "Line endings: CR (classic Mac)." in table.notes


def test_a_classic_mac_file_over_the_line_limit_is_many_lines(tmp_path: Path) -> None:
    """The 32 MiB line limit counts CR as a line break: a big CR file is not one long line."""
    line = b"1234567,some text here,12.5\r"
    count = MAX_LINE_BYTES // len(line) + 1000
    table = read(tmp_path, b"id,text,amount\r" + line * count)
    assert table.frame.height == count
    assert table.frame.row(-1) == ("1234567", "some text here", "12.5")


def test_the_long_line_error_counts_cr_lines(tmp_path: Path) -> None:
    with pytest.raises(FileLimitError) as info:
        read(tmp_path, b"a\rb\r" + b"x" * (MAX_LINE_BYTES + 10) + b"\r")
    assert info.value.message.startswith(
        f"Line 3 of the file is longer than {MAX_LINE_BYTES >> 20} MiB"
    )
    assert info.value.details == [{"line": 3, "limit_bytes": MAX_LINE_BYTES}]


def test_the_bad_byte_error_counts_cr_lines(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError) as info:
        read(tmp_path, b"name,city\rAnna,K\xc3\xb6ln\rBob,Z\xfcrich\r")
    assert info.value.message == (
        "The file is mostly UTF-8 but has an invalid byte 0xFC at byte offset 26 (line 3); "
        "save it as UTF-8 and upload it again."
    )


# ----------------------------------------------------------------------------- HTTP

CREATE = "/data-items/create-from-file/"


def by_label(item: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = {str(f["id"]): f["field_label"] for f in item["fields"]}
    return [{labels[k]: v for k, v in row.items() if k != "_row_ref"} for row in rows]


@pytest.mark.asyncio
async def test_create_and_append_a_classic_mac_csv(api: Caller) -> None:
    data = b'Region,Revenue,Note\rNorth,"45,200.50","line 1\rline 2"\rSouth,31500,plain\r'
    r = await api.client.post(
        CREATE, data={"data_name": "Mac"}, files={"data_file": ("mac.csv", data)}
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["rows_created"] == 2
    assert "Line endings: CR (classic Mac)." in item["notes"]
    assert [(f["field_label"], f["field_type"]) for f in item["fields"]] == [
        ("Region", "char"),
        ("Revenue", "decimal"),
        ("Note", "text"),
    ]
    more = b"Region,Revenue\r\nEast,1\rWest,2\n"
    r = await api.client.post(
        f"/data-items/{item['id']}/append-from-file/", files={"data_file": ("more.csv", more)}
    )
    assert r.status_code == 200, r.text
    assert "Line endings: mixed: CRLF, LF and CR." in r.json()["notes"]
    r = await api.client.get(f"/data-items/{item['id']}/rows/")
    rows = by_label(item, json.loads(r.content, parse_float=Decimal)["rows"])
    assert rows == [
        {"Region": "North", "Revenue": Decimal("45200.5"), "Note": "line 1\rline 2"},
        {"Region": "South", "Revenue": Decimal(31500), "Note": "plain"},
        {"Region": "East", "Revenue": Decimal(1), "Note": None},
        {"Region": "West", "Revenue": Decimal(2), "Note": None},
    ]
    ref = item["reference_file"]["id"]
    download = await api.client.get(f"/data-items/{item['id']}/reference-files/{ref}/")
    assert download.content == data  # the file is kept as uploaded


@pytest.mark.asyncio
async def test_a_classic_mac_row_with_too_many_fields_names_its_row(api: Caller) -> None:
    data = b"a,b\r1,2\r3,4,5\r"
    r = await api.client.post(
        CREATE, data={"data_name": "Mac"}, files={"data_file": ("mac.csv", data)}
    )
    body = assert_error(r, 400, "INVALID_FILE")
    assert body["error"] == "Row 3 has 3 fields but the header has 2."
