"""Waiting for a pipeline to be ready, judged by what is on its topics."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition


def records_on(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` has ever held (0 while it does not exist yet)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return 0
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def wait_for_records(bootstrap: str, topic: str, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if records_on(bootstrap, topic) >= count:
            return True
        time.sleep(0.3)
    return False
