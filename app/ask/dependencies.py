"""The process's model slots (LLM_CONCURRENCY), made on first use."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Request

from app.core.config import Settings


def _slots(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    slots: anyio.CapacityLimiter | None = getattr(state, "llm_slots", None)
    if slots is None:
        settings: Settings = state.settings
        slots = state.llm_slots = anyio.CapacityLimiter(settings.llm_concurrency)
    return slots


ModelSlotsDep = Annotated[anyio.CapacityLimiter, Depends(_slots)]
