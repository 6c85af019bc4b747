"""The model behind questions in plain language: any OpenAI-compatible chat endpoint (llama.cpp's
server, Ollama, vLLM, a hosted API), called over HTTP with the operator's LLM_* settings.

What can go wrong upstream is said to the client in words and never costs more than bounded
time and memory: no model configured (501), the endpoint unreachable or answering an error or
something that is not a chat completion (502), no answer within LLM_TIMEOUT_SECONDS, the whole
exchange included (503 with Retry-After). An answer is read up to MAX_ANSWER_BYTES.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from app.core.config import Settings
from app.core.errors import ModelError, ModelNotConfigured, ModelTimeout

MAX_ANSWER_BYTES = 1024 * 1024
NOT_CONFIGURED = (
    "Questions in plain language need a model: set LLM_BASE_URL to an OpenAI-compatible chat "
    "endpoint (e.g. http://127.0.0.1:8080/v1 for llama.cpp's server, http://127.0.0.1:11434/v1 "
    "for Ollama), LLM_MODEL to its model's name, and LLM_API_KEY if it needs one (README, "
    "Questions in plain language)."
)


def configured(settings: Settings) -> None:
    if not settings.llm_base_url:
        raise ModelNotConfigured(NOT_CONFIGURED)


async def complete(settings: Settings, messages: list[dict[str, str]]) -> str:
    """The model's reply to `messages` (temperature 0, JSON asked for)."""
    configured(settings)
    assert settings.llm_base_url is not None
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    headers = {"Accept": "application/json"}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    body = {
        "model": settings.llm_model,
        "messages": messages,
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }
    seconds = settings.llm_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            status, raw = await _post(url, body, headers, seconds)
    except TimeoutError:
        raise ModelTimeout(
            f"The model did not answer within {seconds:g} s (LLM_TIMEOUT_SECONDS); try again, "
            "or ask a simpler question.",
            headers={"Retry-After": "5"},
        ) from None
    except httpx.HTTPError as exc:
        raise ModelError(
            f"The model endpoint could not be reached ({type(exc).__name__}): check LLM_BASE_URL."
        ) from None
    if status != 200:
        excerpt = raw[:300].decode("utf-8", "replace")
        raise ModelError(f"The model endpoint answered HTTP {status}: {excerpt}")
    return _content(raw)


async def _post(
    url: str, body: dict[str, Any], headers: dict[str, str], seconds: float
) -> tuple[int, bytes]:
    async with (
        httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client,
        client.stream("POST", url, json=body, headers=headers) as response,
    ):
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ModelError(
                    f"The model's answer is longer than {MAX_ANSWER_BYTES // 1024} KiB."
                )
            chunks.append(chunk)
        return response.status_code, b"".join(chunks)


def _content(raw: bytes) -> str:
    """choices[0].message.content of a chat completion."""
    try:
        reply = json.loads(raw)
        content = reply["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise ModelError(
            "The model endpoint's answer is not an OpenAI-style chat completion "
            "(choices[0].message.content): check LLM_BASE_URL."
        ) from None
    if not isinstance(content, str):
        raise ModelError("The model's answer has no text content.")
    return content
