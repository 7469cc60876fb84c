"""Which job goes next, and how far a partition may be committed. Pure, no Kafka.

``JobQueue`` is the priority stage: when jobs back up, ``awas`` leaves before ``siaga`` before
``waspada`` (then jobs without a level), first come first served within a level. Jobs waiting
to be retried sit in a second heap until they are due, so a retry never blocks the others.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from consumers.item import Item
from schemas.events import LEVEL_RANK


def priority(item: Item) -> int:
    level = item.job.level
    return LEVEL_RANK[level] if level is not None else 0


class JobQueue:
    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Item]] = []
        self._later: list[tuple[float, int, Item]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._ready) + len(self._later)

    def push(self, item: Item) -> None:
        heapq.heappush(self._ready, (-priority(item), next(self._seq), item))

    def push_later(self, item: Item, due: float) -> None:
        heapq.heappush(self._later, (due, next(self._seq), item))

    def next_due(self) -> float | None:
        return self._later[0][0] if self._later else None

    def pop_ready(self, limit: int, now: float) -> list[Item]:
        while self._later and self._later[0][0] <= now:
            self.push(heapq.heappop(self._later)[2])
        taken: list[Item] = []
        while self._ready and len(taken) < limit:
            taken.append(heapq.heappop(self._ready)[2])
        return taken

    def drop_partitions(self, partitions: Iterable[int]) -> list[Item]:
        """Forget the jobs of partitions this consumer no longer owns (their new owner reads
        them again from the committed offset)."""
        gone = set(partitions)
        dropped = [e[2] for e in (*self._ready, *self._later) if e[2].partition in gone]
        self._ready = [e for e in self._ready if e[2].partition not in gone]
        self._later = [e for e in self._later if e[2].partition not in gone]
        heapq.heapify(self._ready)
        heapq.heapify(self._later)
        return dropped


class OffsetTracker:
    """One partition's offsets read but not yet settled. The committable offset is the lowest
    unsettled one: a job that is still queued, retrying or unrecorded is never committed past,
    however many later jobs (an ``awas`` that overtook it) have finished."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._heap: list[int] = []
        self._next = -1  # one past the highest offset seen
        self.committed = -1

    def add(self, offset: int) -> None:
        self._pending.add(offset)
        heapq.heappush(self._heap, offset)
        self._next = max(self._next, offset + 1)

    def settle(self, offset: int) -> None:
        self._pending.discard(offset)

    def committable(self) -> int | None:
        """The offset to commit (the next one to read after a restart), or None if nothing
        was read yet."""
        while self._heap and self._heap[0] not in self._pending:
            heapq.heappop(self._heap)
        if self._heap:
            return self._heap[0]
        return self._next if self._next >= 0 else None

    def unsettled(self) -> int:
        return len(self._pending)
