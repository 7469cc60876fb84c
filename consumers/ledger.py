"""The durable memory behind "once per recipient": which job keys a gateway has accepted.

``LedgerIndex`` is the pure part: per input partition, the digests of accepted keys (loaded from
the ledger topic when the partition is assigned), the keys being sent right now, and the keys
accepted since the last group commit. The runner writes those as one ``LedgerEntry`` per
partition per group commit on ``deliveries.ledger`` (same partition number as the input), then
commits the input offsets: a crash can only re-send what was in flight or not yet recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from schemas.delivery import key_digest


class LedgerIndex:
    def __init__(self, max_keys_per_partition: int = 2_000_000) -> None:
        self.max_keys = max_keys_per_partition
        self._accepted: dict[int, set[str]] = {}
        self._order: dict[int, deque[str]] = {}
        self._claimed: set[str] = set()
        self._pending: dict[int, list[tuple[str, int]]] = {}

    def load(self, partition: int, digests: Iterable[str]) -> int:
        self._accepted.setdefault(partition, set())
        self._order.setdefault(partition, deque())
        loaded = 0
        for digest in digests:
            self._remember(partition, digest)
            loaded += 1
        return loaded

    def _remember(self, partition: int, digest: str) -> None:
        accepted, order = self._accepted.setdefault(partition, set()), \
            self._order.setdefault(partition, deque())
        if digest in accepted:
            return
        accepted.add(digest)
        order.append(digest)
        # Bounded: the oldest keys go first. The ledger topic's retention outlives the alerts
        # topics', so what is forgotten here can be re-read from Kafka only by a replay of
        # far older jobs than the bound allows.
        while len(order) > self.max_keys:
            accepted.discard(order.popleft())

    def seen(self, partition: int, job_key: str) -> bool:
        return key_digest(job_key) in self._accepted.get(partition, ())

    def claim(self, partition: int, job_key: str) -> bool:
        """True if this job may be sent: not accepted before and not being sent right now."""
        digest = key_digest(job_key)
        if digest in self._claimed or digest in self._accepted.get(partition, ()):
            return False
        self._claimed.add(digest)
        return True

    def release(self, job_key: str) -> None:
        self._claimed.discard(key_digest(job_key))

    def accept(self, partition: int, job_key: str, offset: int) -> None:
        digest = key_digest(job_key)
        self._claimed.discard(digest)
        self._remember(partition, digest)
        self._pending.setdefault(partition, []).append((digest, offset))

    def take_pending(self) -> dict[int, list[tuple[str, int]]]:
        """Accepted since the last call: what the next ledger entries must record."""
        pending, self._pending = self._pending, {}
        return pending

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._accepted.pop(partition, None)
            self._order.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._accepted.values())
