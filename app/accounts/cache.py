"""Presented API keys resolved from memory, for a bounded time.

A key found in the database is answered from memory for AUTH_CACHE_SECONDS (1 s by default),
counted from *before* the lookup's query: a key revoked at time T (by any process: the CLI, another
replica) is refused by every process from T + AUTH_CACHE_SECONDS at the latest. A key that is not
found (unknown, revoked, malformed) is answered from memory for MISS_SECONDS: a client hammering
with a bad key costs one query a minute, not one per request. Both maps are LRUs of at most
AUTH_CACHE_ENTRIES entries each, so a flood of random keys costs one query per new key and cannot
grow memory past the bound, nor evict the valid keys. Concurrent requests with the same uncached
key share one lookup.

Entries are keyed by the key's SHA-256, never by the key itself. The lookup compares digests in
constant time (app/accounts/service.py); the dictionary probe here is on a digest, which tells
an attacker nothing about any stored key.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from app.accounts.service import KEY_PREFIX, MAX_KEY_CHARS, AuthenticatedAccount

MISS_SECONDS = 60.0

Lookup = Callable[[str], Awaitable[AuthenticatedAccount | None]]


class KeyCache:
    def __init__(self, lookup: Lookup, *, seconds: float, entries: int) -> None:
        self._lookup = lookup
        self.seconds = seconds
        self.entries = entries
        self._hits: OrderedDict[bytes, tuple[float, AuthenticatedAccount]] = OrderedDict()
        self._misses: OrderedDict[bytes, float] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Task[AuthenticatedAccount | None]] = {}
        self.lookups = 0  # database lookups made (for tests and the benchmark's checks)

    def __len__(self) -> int:
        return len(self._hits) + len(self._misses)

    async def resolve(self, presented: str) -> AuthenticatedAccount | None:
        if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_CHARS:
            return None  # never a key: no lookup, nothing cached
        if self.seconds <= 0:
            self.lookups += 1
            return await self._lookup(presented)
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        hit = self._hits.get(digest)
        if hit is not None:
            if hit[0] > now:
                self._hits.move_to_end(digest)
                return hit[1]
            del self._hits[digest]
        miss = self._misses.get(digest)
        if miss is not None:
            if miss > now:
                self._misses.move_to_end(digest)
                return None
            del self._misses[digest]
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.create_task(self._fetch(digest, presented))
            self._inflight[digest] = task
            task.add_done_callback(lambda _: self._inflight.pop(digest, None))
        # shielded: a client that goes away does not cancel the lookup others wait for
        return await asyncio.shield(task)

    def peek(self, presented: str) -> AuthenticatedAccount | None:
        """The account of a valid key answered from memory now, without a lookup; else None."""
        if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_CHARS:
            return None
        hit = self._hits.get(hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest())
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def forget(self, key_id: int) -> None:
        """Drop a key (revoked here) from memory: this process refuses it from now on."""
        for digest in [d for d, (_, account) in self._hits.items() if account.key_id == key_id]:
            del self._hits[digest]

    async def _fetch(self, digest: bytes, presented: str) -> AuthenticatedAccount | None:
        started = time.monotonic()
        self.lookups += 1
        account = await self._lookup(presented)
        if account is None:
            self._misses[digest] = started + MISS_SECONDS
            if len(self._misses) > self.entries:
                self._misses.popitem(last=False)
        else:
            self._hits[digest] = (started + self.seconds, account)
            if len(self._hits) > self.entries:
                self._hits.popitem(last=False)
        return account
