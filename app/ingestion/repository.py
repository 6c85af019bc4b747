"""Reference files: metadata rows and their bytes in 1 MiB chunks (COPY in, one chunk at a time
out), so every replica can serve them and neither direction holds a whole file in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import ReferenceFile

CHUNK_BYTES = 1 << 20


def _chunks(path: Path, file_id: int) -> Iterator[tuple[int, int, bytes]]:
    with path.open("rb") as f:
        seq = 0
        while block := f.read(CHUNK_BYTES):
            yield (file_id, seq, block)
            seq += 1


class ReferenceFileRepository:
    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.data_item_id = data_item_id

    async def store(
        self, path: Path, *, filename: str, content_type: str, size: int, sha256: str
    ) -> ReferenceFile:
        ref = ReferenceFile(
            data_item_id=self.data_item_id,
            filename=filename,
            content_type=content_type,
            size_bytes=size,
            sha256=sha256,
        )
        self.session.add(ref)
        await self.session.flush()
        await self.session.refresh(ref)
        conn = await self.session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            "reference_file_chunks",
            columns=["file_id", "seq", "data"],
            records=_chunks(path, ref.id),
        )
        return ref

    async def get(self, file_id: int) -> ReferenceFile | None:
        stmt = select(ReferenceFile).where(
            ReferenceFile.id == file_id, ReferenceFile.data_item_id == self.data_item_id
        )
        return (await self.session.scalars(stmt)).one_or_none()


async def stream_chunks(engine: AsyncEngine, file_id: int, account_id: int) -> AsyncIterator[bytes]:
    """The file's bytes, chunk by chunk, on a connection of its own (the response outlives the
    request's session). Scoped to the account once more: the chunks are only reachable through
    an item the caller owns."""
    async with engine.connect() as conn:
        seq = 0
        while True:
            result = await conn.execute(
                text(
                    """
                    SELECT c.data FROM reference_file_chunks c
                    JOIN reference_files f ON f.id = c.file_id
                    JOIN data_items d ON d.id = f.data_item_id
                    WHERE c.file_id = :file AND c.seq = :seq AND d.account_id = :account
                    """
                ),
                {"file": file_id, "seq": seq, "account": account_id},
            )
            block = result.scalar_one_or_none()
            if block is None:
                return
            yield bytes(block)
            seq += 1
