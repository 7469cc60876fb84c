"""Delivery jobs on the alerts topics, a delivery consumer in-process, outcomes read back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from consumers.deliver import ChannelRunner, RunStats
from consumers.sinks.base import Sink
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import Channel, DeliveryJob, DeliveryOutcome, Level
from schemas.settings import DeliverySettings, Settings
from schemas.topics import ALERT_TOPICS, DELIVERIES
from tests.factories import T0


def make_job(n: int, *, channel: Channel = Channel.SMS, level: Level | None = Level.SIAGA,
             recipient: str | None = None, subscriber_id: str | None = None,
             incident: str = "INC-52.71.01.1004-hydromet-1",
             text: str | None = None) -> DeliveryJob:
    recipient = recipient or f"+62812{n:08d}"
    return DeliveryJob(
        job_key=f"{incident}/1/{recipient}/{channel.value}", incident_id=incident, version=1,
        channel=channel, recipient=recipient, subscriber_id=subscriber_id or f"sub-{n}",
        area_code="52.71.01.1004", language="id",
        text=text or f"[KENTONGAN] SIAGA banjir Ampenan Selatan #{n}", created_at=T0,
        level=level)


def publish_jobs(bootstrap: str, prefix: str, jobs: Iterable[DeliveryJob]) -> int:
    count = 0
    with Publisher(bootstrap, prefix=prefix) as publisher:
        for job in jobs:
            publisher.send(ALERT_TOPICS[job.channel.value], job.recipient, job)
            count += 1
    return count


def settings_for(bootstrap: str, prefix: str, **delivery: Any) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix,
                    delivery=DeliverySettings(**delivery))


@dataclass
class Running:
    runner: ChannelRunner
    thread: threading.Thread
    stop: threading.Event
    result: dict[str, RunStats]


@contextmanager
def delivering(channel: Channel, sink: Sink, settings: Settings) -> Iterator[Running]:
    """A delivery consumer in a thread of this process, stopped (gracefully) at the end."""
    import asyncio

    stop = threading.Event()
    runner = ChannelRunner(channel, sink, settings, stop)
    result: dict[str, RunStats] = {}

    def main() -> None:
        result["stats"] = asyncio.run(runner.run())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        yield Running(runner, thread, stop, result)
    finally:
        stop.set()
        thread.join(60)


def read_to_end(bootstrap: str, topic: str, partitions: int) -> list[ConsumerRecord]:
    """Everything on ``topic`` right now (to the end offsets), without waiting for more."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        found: list[ConsumerRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=300).values():
                found.extend(records)
        return found
    finally:
        consumer.close()


def outcomes(bootstrap: str, prefix: str, keys: int = 0,
             timeout_s: float = 30.0) -> list[DeliveryOutcome]:
    """The outcomes on ``deliveries``, oldest first; waits until ``keys`` job keys have one."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_to_end(bootstrap, DELIVERIES.full_name(prefix), DELIVERIES.partitions)
        found = sorted((decode(DeliveryOutcome, r.value) for r in records), key=lambda o: o.at)
        if len({o.job_key for o in found}) >= keys or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def final_status(found: list[DeliveryOutcome]) -> dict[str, str]:
    """The outcome per job key that stands: a delivery report (delivered/failed) settles an
    'accepted' whichever reached the topic first (Kannel may call back before it answers)."""
    final: dict[str, str] = {}
    for outcome in found:
        if outcome.status.value != "accepted" or outcome.job_key not in final:
            final[outcome.job_key] = outcome.status.value
    return final
