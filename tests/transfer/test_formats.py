"""Pure pieces of the exports: CSV record ends across chunks, Excel numbers, names."""

from __future__ import annotations

import random

from app.fieldtypes.decimal import excel_number
from app.transfer import xlsx
from app.transfer.exports import CrlfRecords, content_disposition, download_name


class TestCrlfRecords:
    def test_chunk_boundaries_anywhere(self) -> None:
        data = b'a,"x\n""y""\nz",1\nb,,\n"",c\n"\n",d\n'
        whole = CrlfRecords().feed(data)
        assert whole == b'a,"x\n""y""\nz",1\r\nb,,\r\n"",c\r\n"\n",d\r\n'
        rng = random.Random(7)
        for _ in range(200):
            cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 8)))
            parts = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
            records = CrlfRecords()
            assert b"".join(records.feed(p) for p in parts) == whole

    def test_crlf_from_the_server_is_kept(self) -> None:
        records = CrlfRecords()
        out = records.feed(b'a,"x\r\ny"\r') + records.feed(b"\nb,1\r\n")
        assert out == b'a,"x\r\ny"\r\nb,1\r\n'


class TestExcel:
    def test_numbers_only_when_excel_gives_them_back(self) -> None:
        assert excel_number("45200.5") == 45200.5
        assert excel_number("123456789012345") == 123456789012345.0
        assert excel_number("10000000000000000") == 1e16
        assert excel_number("1234567890123456") is None  # 16 digits
        assert excel_number("0.30000000000000004") is None
        assert excel_number("not a number") is None

    def test_sheet_names(self) -> None:
        assert xlsx.sheet_name("Q1 [draft]: a/b?") == "Q1  draft   a b"
        assert xlsx.sheet_name("'") == "Data" and xlsx.sheet_name("History") == "Data"
        assert len(xlsx.sheet_name("x" * 50)) == 31


class TestNames:
    def test_disposition_never_breaks_the_header(self) -> None:
        value = content_disposition('a";\r\nb\\.csv')
        assert "\r" not in value and "\n" not in value
        assert value.startswith('attachment; filename="a____b_.csv"')

    def test_download_name(self) -> None:
        assert download_name("../etc/passwd", "csv") == "-etc-passwd.csv"
        assert download_name(" \x07 ", "csv") == "data.csv"
