"""Follows the compacted ``incidents`` and ``subscribers`` topics for the intake.

From incidents it learns which reports an incident includes (``Signal.signal_id`` of a report
is ``report:<id>#<kelurahan>``), so ``GET /reports/{id}`` can say "attached to incident N".
From subscribers it learns the kelurahan a phone already follows, so ``DAFTAR`` adds to them.
Best effort: a follower behind the broker answers "located" a little longer, nothing worse.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition

from schemas.codec import decode
from schemas.events import Incident, Subscriber
from schemas.topics import INCIDENTS, SUBSCRIBERS

log = logging.getLogger("kentongan.intake.follow")


class _Sink(Protocol):
    @property
    def store(self) -> _Attach: ...

    def note_subscriber(self, subscriber_id: str, areas: list[str], active: bool) -> None: ...


class _Attach(Protocol):
    def attach(self, report_id: str, incident_id: str) -> None: ...


def report_ids_in(incident: Incident) -> list[str]:
    return list(incident.report_ids)


class Follower:
    def __init__(self, bootstrap: str, prefix: str, sink: _Sink) -> None:
        self._bootstrap = bootstrap
        self._topics = {INCIDENTS.full_name(prefix): INCIDENTS,
                        SUBSCRIBERS.full_name(prefix): SUBSCRIBERS}
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="intake-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # broker away or topic missing: retry, never crash intake
                log.warning("follower: %s; retrying", exc)
                self._stop.wait(2.0)

    def _follow(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(name, p) for name, spec in self._topics.items()
                          for p in range(spec.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for record in records:
                        self._apply(self._topics[tp.topic] is INCIDENTS, record.key,
                                    record.value)
        finally:
            consumer.close()

    def _apply(self, is_incident: bool, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if not is_incident and key is not None:  # a deleted subscriber follows nothing
                self._sink.note_subscriber(key.decode(errors="replace"), [], False)
            return
        try:
            if is_incident:
                incident = decode(Incident, value)
                for report_id in report_ids_in(incident):
                    self._sink.store.attach(report_id, incident.incident_id)
            else:
                sub = decode(Subscriber, value)
                self._sink.note_subscriber(sub.subscriber_id, sub.areas, sub.active)
        except ValueError as exc:
            log.warning("follower: skipped an undecodable record: %s", exc)
