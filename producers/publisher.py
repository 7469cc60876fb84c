"""Thin Kafka shell every non-faust stage uses to put catalogue records on the wire."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from pydantic import BaseModel

from schemas.codec import encode, encode_key, text_of
from schemas.events import DeadLetter, dead_letter_key, utc_now
from schemas.topics import DEADLETTER, TopicSpec


def dead_letter(
    *,
    source_topic: str,
    value: bytes | str | None,
    stage: str,
    reason: str,
    key: bytes | str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """The one way a stage writes down a record it could not handle (key: dead_letter_key)."""
    return DeadLetter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=None if key is None else text_of(key),
        value=text_of(value),
        stage=stage,
        reason=reason,
        at=utc_now(),
    )


class Publisher:
    """Idempotent producer (acks=all) bound to one topic prefix."""

    def __init__(self, bootstrap: str, *, prefix: str = "", client_id: str = "kentongan") -> None:
        self.bootstrap, self.prefix = bootstrap, prefix
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )

    def send(
        self, spec: TopicSpec, key: str | None, value: BaseModel | bytes | None, *,
        headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
    ) -> Any:
        """``value`` None is a tombstone: a compacted topic forgets ``key``."""
        payload = value if value is None or isinstance(value, bytes) else encode(value)
        return self._producer.send(spec.full_name(self.prefix), key=encode_key(key),
                                   value=payload, headers=headers, partition=partition)

    def dead_letter(
        self,
        *,
        source_topic: str,
        value: bytes | str | None,
        stage: str,
        reason: str,
        key: bytes | str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Any:
        letter = dead_letter(source_topic=source_topic, value=value, stage=stage, reason=reason,
                             key=key, partition=partition, offset=offset)
        return self.send(DEADLETTER, dead_letter_key(source_topic, partition, offset), letter)

    def flush(self, timeout: float | None = 30.0) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.close()
