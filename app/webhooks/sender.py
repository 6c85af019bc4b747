"""One delivery attempt: POST the stored body, signed by the caller, to the vetted address, and
classify the outcome.

The caller passes the signing headers (`app.webhooks.signing`: `webhook-id`, `webhook-timestamp`,
`webhook-signature`, and `X-Signature` for webhooks from before) and the delivery's own ones
(`X-Delivery-Id`, the same on every attempt of a delivery, `X-Delivery-Attempt`, `X-Event-Type`,
`X-Webhook-Id`). A 2xx answer is a success; anything else (including a redirect, which is never
followed), a connection problem or the timeout is a failure to retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
import httpx

from app import __version__
from app.webhooks.urls import ResolveError, UnsafeURL, parse_url, resolve

USER_AGENT = f"data-items-webhooks/{__version__}"
_EXCERPT = 200


@dataclass(frozen=True)
class Attempt:
    ok: bool
    response_code: int | None
    error: str | None
    duration_ms: int
    retry: bool = True  # False: retrying cannot help (the URL is refused)


def make_client() -> httpx.AsyncClient:
    """No proxies from the environment (they would bypass the address checks), no redirects, and
    no connection reuse: each attempt connects to the address it vetted, with its own TLS name."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT},
    )


def _pinned(url: str, address: str) -> tuple[httpx.URL, str]:
    original = httpx.URL(url)
    host_header = original.netloc.decode("ascii")
    return original.copy_with(host=address), host_header


async def _post(
    client: httpx.AsyncClient,
    target: httpx.URL,
    body: bytes,
    *,
    headers: dict[str, str],
    sni_hostname: str,
    time_limit: float,
) -> tuple[int, str, bytes]:
    """POST; the status, the Location header and the start of the answer's body."""
    async with client.stream(
        "POST",
        target,
        content=body,
        headers=headers,
        timeout=time_limit,
        extensions={"sni_hostname": sni_hostname},
    ) as response:
        excerpt = b""
        async for chunk in response.aiter_raw():
            excerpt += chunk
            if len(excerpt) >= _EXCERPT:
                break
        return response.status_code, response.headers.get("location", ""), excerpt


async def send(
    client: httpx.AsyncClient,
    *,
    url: str,
    body: str,
    headers: dict[str, str],
    time_limit: float,
    allow_private: bool,
) -> Attempt:
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    raw = body.encode()
    try:
        destination = parse_url(url, allow_private=allow_private)
        with anyio.fail_after(time_limit):
            addresses = await resolve(destination, allow_private=allow_private)
            for i, address in enumerate(addresses):  # the next address only if one refuses
                target, host_header = _pinned(destination.url, str(address))
                try:
                    code, location, excerpt = await _post(
                        client,
                        target,
                        raw,
                        headers={
                            **headers,
                            "Host": host_header,
                            "Content-Type": "application/json",
                            "Connection": "close",
                        },
                        sni_hostname=destination.host,
                        time_limit=time_limit,
                    )
                    break
                except httpx.ConnectError:
                    if i == len(addresses) - 1:
                        raise
    except UnsafeURL as exc:
        return Attempt(False, None, f"Refused: the URL {exc}.", elapsed(), retry=False)
    except ResolveError as exc:
        return Attempt(False, None, str(exc)[:500], elapsed())
    except TimeoutError:
        return Attempt(False, None, f"No answer within {time_limit:g} s.", elapsed())
    except httpx.TimeoutException:
        return Attempt(False, None, f"No answer within {time_limit:g} s.", elapsed())
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return Attempt(False, None, f"Connection failed: {reason}"[:500], elapsed())
    except OSError as exc:
        return Attempt(False, None, f"Connection failed: {exc}"[:500], elapsed())
    if 200 <= code < 300:
        return Attempt(True, code, None, elapsed())
    text = excerpt[:_EXCERPT].decode("utf-8", "replace").strip()
    if 300 <= code < 400:
        where = location
        error = f"HTTP {code}: redirects are not followed" + (
            f" (to {where[:200]})" if where else ""
        )
    else:
        error = f"HTTP {code} from the receiver" + (f": {text}" if text else "")
    return Attempt(False, code, error, elapsed())
