"""How a load is cut into chunks (converted in a thread while the previous chunk streams)."""

from __future__ import annotations

import pytest

from app.ingestion.pipeline import CHUNK_ROWS, chunk_bounds


@pytest.mark.parametrize("total", [0, 1, 9_999, 20_001, 50_000, 100_000, 1_000_000, 1_050_001])
def test_chunks_cover_every_row_once_in_order(total: int) -> None:
    bounds = chunk_bounds(total)
    assert [s for s, _ in bounds] == sorted({s for s, _ in bounds})
    covered = [row for start, stop in bounds for row in range(start, stop)]
    assert covered == list(range(total))
    assert all(stop - start <= CHUNK_ROWS * 5 // 4 for start, stop in bounds)


def test_a_100k_file_streams_half_size_chunks_first_and_last() -> None:
    sizes = [stop - start for start, stop in chunk_bounds(100_000)]
    assert sizes == [12_500, 25_000, 25_000, 25_000, 12_500]
    sizes = [stop - start for start, stop in chunk_bounds(1_000_000)]
    assert sizes == [50_000, *[100_000] * 9, 50_000]
    assert chunk_bounds(10_000) == [(0, 10_000)]  # small files: one chunk
