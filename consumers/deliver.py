"""Kafka shell of a delivery channel: alerts.<channel> -> pipeline -> deliveries (+ deadletter)."""

from __future__ import annotations

import logging
import threading

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from consumers import metrics
from consumers.pipeline import DeliveryPipeline
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import DeliveryJob, DeliveryStatus
from schemas.topics import ALERT_TOPICS, DELIVERIES

log = logging.getLogger(__name__)


def run_channel(
    channel: str,
    pipeline: DeliveryPipeline,
    *,
    bootstrap: str,
    prefix: str,
    group_id: str,
    stop: threading.Event,
    poll_timeout_ms: int = 500,
) -> None:
    """Consume until ``stop`` is set. Offsets are committed only after every record of the
    batch has a recorded outcome, so a crash replays jobs (which the notification log dedupes)
    rather than losing them."""
    spec = ALERT_TOPICS[channel]
    consumer = KafkaConsumer(
        spec.full_name(prefix),
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"kentongan-deliver-{channel}",
    )
    publisher = Publisher(bootstrap, prefix=prefix, client_id=f"kentongan-deliver-{channel}")

    def reject(record: ConsumerRecord, reason: str) -> None:
        metrics.DEADLETTERS.labels(channel=channel).inc()
        publisher.dead_letter(
            source_topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, stage=f"deliver-{channel}", reason=reason,
        )

    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=poll_timeout_ms)
            if not batches:
                continue
            for records in batches.values():
                for record in records:
                    try:
                        job = decode(DeliveryJob, record.value)
                    except ValidationError as exc:
                        reject(record, f"invalid delivery job: {exc}")
                        continue
                    outcome = pipeline.deliver(job)
                    metrics.OUTCOMES.labels(channel=channel, status=outcome.status.value).inc()
                    publisher.send(DELIVERIES, job.job_key, outcome)
                    if outcome.status is DeliveryStatus.FAILED:
                        reject(record, f"gave up after {outcome.attempts} attempts: "
                                       f"{outcome.detail}")
            publisher.flush()
            consumer.commit()
    finally:
        publisher.close()
        consumer.close()
