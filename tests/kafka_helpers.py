"""Reading what landed on a topic, for assertions against the real broker."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from deploy.kafka_runner import KafkaRunner
from schemas.settings import Settings


def free_ports(count: int) -> list[int]:
    """Ports the kernel considers free right now (all held open together, so they differ)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def shared_jars_dir() -> Path:
    """The default home's jar cache: fetched once per machine, not once per test session."""
    return KafkaRunner.from_settings(Settings()).jars_dir


def read_topic(
    bootstrap: str, topic: str, *, partitions: int, min_count: int = 0, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning; waits until ``min_count`` have arrived."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    found: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            for records in consumer.poll(timeout_ms=300).values():
                found.extend(records)
            if (min_count and len(found) >= min_count) or time.monotonic() > deadline:
                return found
    finally:
        consumer.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def wait_while_running(
    predicate: Callable[[], bool], processes: list[subprocess.Popen[bytes]], logs: Path,
    timeout_s: float,
) -> None:
    """Wait for ``predicate``; fail at once, with the logs, if one of the processes died."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        dead = [p for p in processes if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}"
                              for log in sorted(logs.glob("*.log")))
            what = f"process exited with {dead[0].returncode}" if dead else "timed out"
            raise AssertionError(f"{what}\n{tails}")
        time.sleep(0.2)
