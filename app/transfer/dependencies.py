"""The bundle a `POST …/import-bundle/` carries, read from the request before the endpoint runs."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import IO, Annotated

from fastapi import Depends, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from app.core.deps import check_query_first
from app.core.errors import BadRequest, ErrorCode

BUNDLE_FILE_FIELD = "bundle_file"


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def bundle_source(request: Request) -> AsyncIterator[IO[bytes]]:
    """The bundle to import: the JSON body itself (up to MAX_JSON_BYTES), or the file
    `bundle_file` of a multipart upload (up to MAX_UPLOAD_BYTES, spooled to disk, closed when
    the endpoint is done)."""
    check_query_first(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if _is_json(content_type):
        yield io.BytesIO(await request.body())
        return
    if content_type != "multipart/form-data":
        raise BadRequest(
            "Send the bundle as the request body (Content-Type: application/json) or as the "
            f"file `{BUNDLE_FILE_FIELD}` of a multipart/form-data upload.",
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    try:
        form = await request.form(max_files=1, max_fields=0)
    except (MultiPartException, StarletteHTTPException) as exc:
        detail = getattr(exc, "message", None) or getattr(exc, "detail", "")
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 413:
            raise
        raise BadRequest(f"The multipart body cannot be read: {detail}") from None
    except ClientDisconnect:
        raise BadRequest("The client disconnected during the upload.") from None
    try:
        upload = form.get(BUNDLE_FILE_FIELD)
        unexpected = [k for k in form if k != BUNDLE_FILE_FIELD]
        if unexpected or not isinstance(upload, UploadFile):
            raise BadRequest(
                f"Send the bundle as the file `{BUNDLE_FILE_FIELD}` (and nothing else).",
                details=[{"field": BUNDLE_FILE_FIELD, "message": "is required"}],
            )
        yield upload.file
    finally:
        await form.close()


# scope "function": the spooled file is closed when the endpoint returns (before the commit)
BundleSourceDep = Annotated[IO[bytes], Depends(bundle_source, scope="function")]
