"""Positions in an ordered list: fields of an item, widgets of an item, series of a widget.

Positions are 0, 1, … without gaps. A new entry goes where it is asked to (at the end when not
asked, or asked past the end) and the ones from there on move down; a moved entry takes its new
place (the last one at most) and the ones between close up behind it; a removed entry's gap
closes. Each repository keeps its own column and scope and offers `count` and `shift`; the
caller holds the lock that keeps the positions still (`lock_item`, `lock`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")

_UNPLACED = 10**9  # an entry without a wanted position goes after those with one


class Positions(Protocol):
    async def count(self) -> int: ...

    async def shift(self, *, start: int, stop: int | None, delta: int) -> None:
        """Add `delta` to the position of entries with start <= position (< stop if given)."""


async def insert(positions: Positions, wanted: int | None, count: int) -> int:
    """The position of a new entry among `count`, room made for it."""
    position = count if wanted is None else min(wanted, count)
    if position < count:
        await positions.shift(start=position, stop=None, delta=1)
    return position


async def move(positions: Positions, current: int, wanted: int) -> int:
    """Move the entry at `current` to `wanted` (the last position at most); its new position."""
    target = min(wanted, await positions.count() - 1)
    if target > current:
        await positions.shift(start=current + 1, stop=target + 1, delta=-1)
    elif target < current:
        await positions.shift(start=target, stop=current, delta=1)
    return target


async def close_gap(positions: Positions, removed: int) -> None:
    """The entries after the removed one at `removed` move up."""
    await positions.shift(start=removed + 1, stop=None, delta=-1)


def in_given_order(entries: Sequence[T], wanted: Callable[[T], int | None]) -> list[T]:
    """Entries created together, sorted by the position each asks for (those that ask for none
    last), ties in the order given: their positions are then their indexes."""
    ranked = sorted(enumerate(entries), key=lambda p: (_position(wanted(p[1])), p[0]))
    return [entry for _, entry in ranked]


def _position(wanted: int | None) -> int:
    return _UNPLACED if wanted is None else wanted
