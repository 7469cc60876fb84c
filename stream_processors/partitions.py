"""Which partition a key lands in: the producers' default partitioner, so explicit partitions
(re-keyed topics, the correlator's ticks) agree with what any client would choose."""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def partition_of(key: str, partitions: int) -> int:
    """The partition the producers' default partitioner puts ``key`` in (murmur2, as Java)."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions
