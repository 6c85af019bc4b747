"""The multipart form of an upload, received before the endpoint runs and removed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request

from app.core.config import spool_dir
from app.core.db import SessionDep
from app.core.deps import SettingsDep, check_query_first
from app.ingestion.upload import UploadForm, receive_form


async def received_form(
    request: Request, session: SessionDep, settings: SettingsDep
) -> AsyncIterator[UploadForm]:
    """The form, its file spooled to disk; the spooled file is removed when the endpoint is
    done (it has been stored or loaded by then, or the request failed).

    What the request read so far (the item it appends to) is committed first: no transaction
    stays open while the file streams in, which can take minutes on a slow link."""
    check_query_first(request)
    if session.in_transaction():
        await session.commit()
    form = await receive_form(request, spool_dir(settings))
    try:
        yield form
    finally:
        await anyio.to_thread.run_sync(form.cleanup)


# scope "function": the file is removed when the endpoint returns, before the request's
# transaction commits and the response is sent (as SessionDep, which it uses).
UploadFormDep = Annotated[UploadForm, Depends(received_form, scope="function")]
