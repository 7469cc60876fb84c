"""What the intake remembers about reports: idempotency and the state ``GET`` answers.

In memory and bounded: it survives neither a restart nor a second replica. That is enough for
"the same POST twice is accepted once" within a process lifetime; the Kafka key (the report id)
lets the worker dedupe further downstream (``Signal.signal_id`` is derived from it).
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas.reports import NormalizedReport


@dataclass(frozen=True)
class ReportRecord:
    report_id: str
    fingerprint: str  # hash of the canonical submission: same id + other content = conflict
    received_at: datetime
    normalized: NormalizedReport
    incidents: tuple[str, ...] = field(default=())


class ReportStore:
    def __init__(self, max_reports: int = 100_000) -> None:
        self._records: OrderedDict[str, ReportRecord] = OrderedDict()
        self._idempotency: OrderedDict[str, str] = OrderedDict()
        # Incidents can name a report before this intake learns it (replay after a restart).
        self._pending_incidents: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._max = max_reports
        self._lock = threading.Lock()
        # Striped locks: two requests for the same id serialise; others do not wait.
        self._stripes = [threading.Lock() for _ in range(64)]

    def lock_for(self, report_id: str) -> threading.Lock:
        return self._stripes[zlib.crc32(report_id.encode()) % len(self._stripes)]

    def get(self, report_id: str) -> ReportRecord | None:
        with self._lock:
            return self._records.get(report_id)

    def id_for_key(self, idempotency_key: str) -> str | None:
        with self._lock:
            return self._idempotency.get(idempotency_key)

    def add(self, record: ReportRecord, idempotency_key: str | None = None) -> None:
        with self._lock:
            pending = self._pending_incidents.pop(record.report_id, ())
            self._records[record.report_id] = replace(
                record, incidents=tuple(dict.fromkeys((*record.incidents, *pending))))
            if idempotency_key:
                self._idempotency[idempotency_key] = record.report_id
            self._trim()

    def attach(self, report_id: str, incident_id: str) -> None:
        with self._lock:
            record = self._records.get(report_id)
            if record is None:
                known = self._pending_incidents.get(report_id, ())
                if incident_id not in known:
                    self._pending_incidents[report_id] = (*known, incident_id)
            elif incident_id not in record.incidents:
                self._records[report_id] = replace(
                    record, incidents=(*record.incidents, incident_id))
            self._trim()

    def _trim(self) -> None:
        for table in (self._records, self._idempotency, self._pending_incidents):
            while len(table) > self._max:
                table.popitem(last=False)
