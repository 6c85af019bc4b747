"""Failed authentications per client address, in memory: past AUTH_FAILURES_PER_MINUTE in a
minute, the address's requests are refused (429 with Retry-After) before any key is looked up,
until its minute is over. Guessing keys then costs the guesser a minute per handful of guesses
and the database nothing. The map holds at most MAX_ADDRESSES entries (the least recently
failing go first), so a flood of addresses cannot grow memory.

A valid key the process is answering from memory (used within AUTH_CACHE_SECONDS) still passes
from a throttled address: it costs no lookup either, and a client sharing an address with a
guesser keeps working while it keeps its key in use.

Per process: with several replicas an address gets the allowance on each. The address is the
client's as uvicorn sees it: behind a gateway, set FORWARDED_ALLOW_IPS to the gateway's address
so that X-Forwarded-For gives each client its own (otherwise every client shares the gateway's,
and one guesser throttles them all), or AUTH_FAILURES_PER_MINUTE=0 where the gateway throttles."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

MAX_ADDRESSES = 100_000
WINDOW = 60.0


class AuthFailures:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address: (start, n)

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again, or None when it may now."""
        if self.per_minute <= 0:
            return None
        entry = self._seen.get(address)
        if entry is None:
            return None
        start, failures = entry
        left = start + WINDOW - time.monotonic()
        if left <= 0:
            del self._seen[address]
            return None
        return max(1, math.ceil(left)) if failures >= self.per_minute else None

    def failed(self, address: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        start, failures = self._seen.pop(address, (now, 0))
        if now - start >= WINDOW:
            start, failures = now, 0
        self._seen[address] = (start, failures + 1)
        if len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
