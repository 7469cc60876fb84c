"""What is already on a raw topic: the topic is the source of truth for "published once".

At start, a producer reads every key of its raw topics from the beginning (keys only matter;
values are skipped by the broker only in size, so this is O(topic)), and then skips any
document whose key is already there. Replays and restarted pollers therefore never land the
same document twice, without a local state file that could drift from Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition

from schemas.topics import TopicSpec


class KeyLedger:
    """Keys already on each raw topic, plus those published since the ledger was loaded."""

    def __init__(self, keys: dict[str, set[str]] | None = None) -> None:
        self._keys: dict[str, set[str]] = {name: set(v) for name, v in (keys or {}).items()}

    def seen(self, spec: TopicSpec, key: str) -> bool:
        return key in self._keys.get(spec.name, set())

    def add(self, spec: TopicSpec, key: str) -> None:
        self._keys.setdefault(spec.name, set()).add(key)

    def count(self, spec: TopicSpec) -> int:
        return len(self._keys.get(spec.name, set()))


def read_keys(bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> set[str]:
    """Every key on ``topic`` from the beginning up to its current end offsets. A topic that
    does not exist yet holds no keys."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        consumer_timeout_ms=1000,
    )
    try:
        known = consumer.partitions_for_topic(topic)
        if not known:
            return set()
        assigned = [TopicPartition(topic, p) for p in sorted(known)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if end[tp] > 0}
        keys: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading keys of {topic}: not at the end after {timeout_s}s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key is not None:
                        keys.add(record.key.decode("utf-8", errors="replace"))
            for tp in list(remaining):
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return keys
    finally:
        consumer.close()


def load_ledger(bootstrap: str, specs: Iterable[TopicSpec], *, prefix: str = "") -> KeyLedger:
    return KeyLedger({
        spec.name: read_keys(bootstrap, spec.full_name(prefix))
        for spec in specs
    })
